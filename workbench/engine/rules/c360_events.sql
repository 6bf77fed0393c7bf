-- Customer 360, events block (workbench.customer360): per OneID and canonical event type present
-- in the layer, the quantity-weighted count, total minutes, money and latest time of its events
-- before the cutoff (<measures>: one aggregate per column, made from the layer's event types), and
-- the latest event of any kind; a OneID without such events counts 0 (<columns>: the counts as 0).
-- Tables: events, population (oneid). Parameters: <before_events>, <measures>, <columns>.
WITH e AS (
    SELECT * FROM events WHERE {before_events}
), per AS (
    SELECT oneid, {measures}, MAX(event_time) AS last_touch_at FROM e GROUP BY oneid
)
SELECT p.oneid, {columns}, per.last_touch_at
FROM population p LEFT JOIN per ON p.oneid = per.oneid
