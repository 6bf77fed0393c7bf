-- Customer 360, always-present columns (workbench.customer360, block "always"): per OneID with a
-- record before the cutoff, its records, first / last dated record, the channels it was seen in
-- (sorted, comma-separated), the distinct identifier values first seen before the cutoff, and
-- whether one of them is of a unique kind (a member or customer number: part of "is_known").
-- Tables: records, identifiers. Parameters: <before_records>, <before_identifiers> (TRUE: no
-- cutoff), <unique_identifiers> (the identity settings' identifiers of kind unique as string
-- literals; NULL: none).
WITH r AS (
    SELECT oneid, channel, at FROM records WHERE {before_records}
), core AS (
    SELECT oneid, COUNT(*) AS n_records, MIN(at) AS first_seen, MAX(at) AS last_seen,
           CONCAT_WS(',', ARRAY_SORT(COLLECT_SET(channel))) AS channels,
           CAST(SIZE(COLLECT_SET(channel)) AS BIGINT) AS n_channels
    FROM r GROUP BY oneid
), first_seen AS (
    SELECT oneid, identifier, value_hash, MIN(at) AS at FROM identifiers GROUP BY oneid, identifier, value_hash
), ids AS (
    SELECT oneid, COUNT(*) AS n_identifiers,
           COALESCE(BOOL_OR(identifier IN ({unique_identifiers})), FALSE) AS has_unique_identifier
    FROM first_seen WHERE {before_identifiers} GROUP BY oneid
)
SELECT c.*, CAST(COALESCE(i.n_identifiers, 0) AS BIGINT) AS n_identifiers,
       COALESCE(i.has_unique_identifier, FALSE) AS has_unique_identifier
FROM core c LEFT JOIN ids i ON c.oneid = i.oneid
