-- The core of OneID's record–value graph, where connected components must iterate
-- (workbench.identity.deterministic.components gives the same components on the whole graph): a
-- value held by one record joins nothing, and a record left with one value is a leaf that only
-- hangs on that value's component (most event records: one cookie). What is left — records with
-- two or more linking values — decides which values belong together; a path between two core
-- records passes only through core records and linking values, so the core's components are the
-- whole graph's, restricted to it. identity_components_attach.sql puts the rest back.
-- Tables: cc_all_edges (rec, vcode) — the kept identifier edges.
-- Parameters: none. Output: rec, vcode (the core's edges).
WITH linking_value AS (
    SELECT vcode FROM cc_all_edges GROUP BY vcode HAVING COUNT(DISTINCT rec) > 1
), linking AS (
    SELECT DISTINCT e.rec, e.vcode FROM cc_all_edges e JOIN linking_value v ON e.vcode = v.vcode
), core_record AS (
    SELECT rec FROM linking GROUP BY rec HAVING COUNT(*) > 1
)
SELECT l.rec, l.vcode FROM linking l JOIN core_record c ON l.rec = c.rec
