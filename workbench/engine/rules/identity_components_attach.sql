-- Every record of OneID's record–value graph with its component's smallest record (the label the
-- local engine numbers components by, workbench.identity.deterministic.components), from the
-- core's components (identity_components_core.sql, identity_components_step.sql): a linking value
-- takes the component of its core records, or — held by leaves only — is a component of its own
-- (key -1 - vcode, apart from the core labels, which are records >= 0); a leaf takes its value's;
-- a record with no linking value is alone.
-- Tables: cc_all_edges (rec, vcode) — every kept edge; cc_labels (rec, label) — the core's records
-- with the smallest core record of their component.
-- Parameters: none. Output: rec, label (one row per record with an edge).
WITH linking_value AS (
    SELECT vcode FROM cc_all_edges GROUP BY vcode HAVING COUNT(DISTINCT rec) > 1
), linking AS (
    SELECT DISTINCT e.rec, e.vcode FROM cc_all_edges e JOIN linking_value v ON e.vcode = v.vcode
), value_key AS (
    SELECT l.vcode, COALESCE(MIN(c.label), -1 - l.vcode) AS key
    FROM linking l LEFT JOIN cc_labels c ON l.rec = c.rec
    GROUP BY l.vcode
), record_key AS (
    SELECT l.rec, MIN(v.key) AS key FROM linking l JOIN value_key v ON l.vcode = v.vcode GROUP BY l.rec
), records AS (
    SELECT DISTINCT rec FROM cc_all_edges
), keyed AS (
    SELECT r.rec, COALESCE(k.key, -1 - (SELECT MAX(vcode) FROM cc_all_edges) - 1 - r.rec) AS key
    FROM records r LEFT JOIN record_key k ON r.rec = k.rec
)
SELECT rec, MIN(rec) OVER (PARTITION BY key) AS label FROM keyed
