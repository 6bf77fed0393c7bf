-- Consents said by a profile record (CanonicalBuild._profile): its consent_<purpose> field (empty:
-- unknown) at the record's updated_at, else its own time.
-- Tables: src. Parameters: purpose (a string literal), granted (the field's column), sub (position).
SELECT oneid, record_id, channel, {purpose} AS purpose, CAST({granted} AS BOOLEAN) AS granted,
       COALESCE(updated_at, `at`) AS `at`, 'profile record' AS event, CAST(0 AS BIGINT) AS priority,
       _m, {sub} AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
