-- Returns rows as refunds (CanonicalBuild.finish): a return names its order by the same key fields
-- (src.ref, without the channel); it is matched when <candidate channel>:<ref> is an order key of the
-- layer, trying the candidates in their order (returns_of, else every orders channel in mapping
-- order). Unmatched, it keeps its own key (<channel>:<return_id>, else its record id). Where it was
-- sold: its order's sales channel, else its own, else the usual (most frequent, then smallest) sales
-- channel of the orders channel it belongs to (returns_of only), else its channel.
-- Tables: src (a returns channel), order_keys (order_key, sales_channel: every order of the layer),
-- candidates (pos INT, channel STRING), usual (sales_channel STRING: at most one row).
-- Parameters: m (the sort position of the channel's rows).
WITH hits AS (
    SELECT s._row, MIN_BY(k.order_key, c.pos) AS order_key, MIN_BY(k.sales_channel, c.pos) AS sold
    FROM src s CROSS JOIN candidates c
    JOIN order_keys k ON k.order_key = concat(c.channel, ':', s.ref)
    GROUP BY s._row
)
SELECT s.oneid, s.record_id, s.channel, COALESCE(h.order_key, s.return_key) AS order_key,
       s.returned_at AS refunded_at, ABS(s.amount) AS amount, h.order_key IS NOT NULL AS matched,
       'return' AS source,
       COALESCE(h.sold, s.sales_channel, (SELECT MAX(sales_channel) FROM usual), s.channel) AS sales_channel,
       {m} AS _m, 0 AS _sub, s._row, CAST(NULL AS STRING) AS _key
FROM src s LEFT JOIN hits h ON h._row = s._row
