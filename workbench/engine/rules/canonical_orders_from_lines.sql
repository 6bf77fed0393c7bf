-- The canonical orders of an orders channel of line items (grain: line), aggregated by order key: the
-- order's time, record, order id, sales channel and store are its first line's (by time, missing
-- last, then record id); its category and product its largest line's (by amount, then record id);
-- its OneID the one holding most of its amount (then the smallest OneID); its gross the sum of the
-- lines that are not cancelled; cancelled when every line is; status cancelled when every line is,
-- else refunded when any line is, else paid. Rows sorted by order key.
-- Tables: lines (canonical_order_lines.sql).
WITH ranked AS (
    SELECT *,
           ROW_NUMBER() OVER (PARTITION BY order_key ORDER BY ordered_at ASC NULLS LAST, record_id) AS first_line,
           ROW_NUMBER() OVER (PARTITION BY order_key ORDER BY amount DESC, record_id) AS biggest_line
    FROM lines
), owners AS (
    SELECT order_key, oneid, ROW_NUMBER() OVER (PARTITION BY order_key ORDER BY held DESC, oneid) AS pos
    FROM (SELECT order_key, oneid, SUM(amount) AS held FROM lines GROUP BY order_key, oneid)
), per_order AS (
    SELECT order_key,
           MAX(CASE WHEN first_line = 1 THEN struct(record_id, channel, order_id, ordered_at, sales_channel, store, _m) END) AS f,
           MAX(CASE WHEN biggest_line = 1 THEN struct(category, product) END) AS b,
           BOOL_AND(cancelled) AS cancelled,
           CASE WHEN BOOL_AND(status = 'cancelled') THEN 'cancelled'
                WHEN BOOL_OR(status = 'refunded') THEN 'refunded' ELSE 'paid' END AS status,
           SUM(paid) AS gross, SUM(quantity) AS quantity, COUNT(*) AS lines
    FROM ranked GROUP BY order_key
)
SELECT w.oneid, p.f.record_id, p.f.channel, p.order_key, p.f.order_id, p.f.ordered_at, p.status,
       NOT p.cancelled AS is_order, CAST(p.gross AS DOUBLE) AS gross, p.b.category, p.b.product,
       CAST(p.quantity AS DOUBLE) AS quantity, CAST(p.lines AS BIGINT) AS lines, p.f.sales_channel, p.f.store,
       p.f._m AS _m, 0 AS _sub, CAST(0 AS BIGINT) AS _row, p.order_key AS _key
FROM per_order p JOIN owners w ON w.order_key = p.order_key AND w.pos = 1
