-- One step of connected components of OneID's bipartite record–value graph
-- (workbench.identity.deterministic.components): each value takes the smallest label of its
-- records, each record the smallest label of its values, then every label jumps to its own
-- label's label (pointer jumping, so long chains close in few steps). A label is always a record
-- of the same component, never above the record itself; when a step changes no label, each
-- component's records all carry its smallest record (the local engine's canonical numbering
-- orders components by that record).
-- Tables: cc_edges (rec, vcode) — the graph's core (identity_components_core.sql); cc_labels (rec, label) — one row per
-- core record (at the start, label = rec, or any core record of its component not above it).
-- Parameters: none. Output: rec, label, changed (the label went down in this step).
WITH value_min AS (
    SELECT e.vcode, MIN(l.label) AS label
    FROM cc_edges e JOIN cc_labels l ON e.rec = l.rec
    GROUP BY e.vcode
), record_min AS (
    SELECT e.rec, MIN(v.label) AS label
    FROM cc_edges e JOIN value_min v ON e.vcode = v.vcode
    GROUP BY e.rec
), hop AS (
    SELECT l.rec, l.label AS before, LEAST(l.label, r.label) AS label
    FROM cc_labels l JOIN record_min r ON l.rec = r.rec
)
SELECT h.rec, LEAST(h.label, p.label) AS label, LEAST(h.label, p.label) < h.before AS changed
FROM hop h JOIN hop p ON h.label = p.rec
