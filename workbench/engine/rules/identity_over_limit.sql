-- OneID's per-value person limit, one tier at a time (workbench.identity.deterministic.link_deterministic,
-- its persons per value): a value of the tier joins as many persons as the largest number of
-- separate components of the kept graph, carrying the same trusted identifier type, that it
-- touches (two components with a member id each are two persons; one with a member id and one
-- with only a unionid are not). A value over its identifier's max_persons is not used as a link.
-- Records without a kept edge are alone and carry no trusted identifier, so they count for none.
-- Tables: tier_edges (rec, identifier, vcode) — the tier's edges; kept_edges (rec, identifier,
-- vcode) — the edges kept so far; cc_result (rec, label) — the kept graph's component per record
-- with a kept edge (identity_components_step.sql); limits (identifier, max_persons).
-- Parameters: none. Output: vcode, identifier, persons, max_persons of each value over its limit.
WITH touch AS (
    SELECT DISTINCT t.vcode, l.label AS c
    FROM tier_edges t JOIN cc_result l ON t.rec = l.rec
), known AS (
    SELECT DISTINCT l.label AS c, k.identifier
    FROM kept_edges k JOIN cc_result l ON k.rec = l.rec
), per_type AS (
    SELECT t.vcode, k.identifier, COUNT(*) AS n
    FROM touch t JOIN known k ON t.c = k.c
    GROUP BY t.vcode, k.identifier
), persons AS (
    SELECT vcode, MAX(n) AS persons FROM per_type GROUP BY vcode
), value_identifier AS (
    SELECT DISTINCT vcode, identifier FROM tier_edges
)
SELECT p.vcode, v.identifier, p.persons, m.max_persons
FROM persons p
JOIN value_identifier v ON p.vcode = v.vcode
JOIN limits m ON v.identifier = m.identifier
WHERE p.persons > m.max_persons
