-- The purchases view (workbench.canonical.net_purchases): every order before the cutoff, one row
-- per order, with the refunds before the cutoff netted onto it; refunds whose order is not in
-- the data stay rows of their own (negative net, is_order false). Tables: orders, refunds.
-- Parameter: <before_orders> / <before_refunds>, the cutoff conditions (TRUE: no cutoff).
WITH o AS (
    SELECT * FROM orders WHERE {before_orders}
), r AS (
    SELECT r.*, (r.matched AND EXISTS (SELECT 1 FROM o WHERE o.order_key = r.order_key)) AS known
    FROM refunds r WHERE {before_refunds}
), netted AS (
    SELECT order_key, SUM(amount) AS refund, MAX(refunded_at) AS refunded_at
    FROM r WHERE known GROUP BY order_key
)
SELECT o.oneid, o.record_id, o.channel, o.sales_channel, o.order_key, o.ordered_at,
       CASE WHEN o.status = 'cancelled' THEN 'cancelled'
            WHEN COALESCE(n.refund, 0.0) > 0 OR o.status = 'refunded' THEN 'refunded'
            ELSE 'paid' END AS status,
       o.is_order, o.category, CAST(o.gross AS DOUBLE) AS gross,
       CAST(COALESCE(n.refund, 0.0) AS DOUBLE) AS refund,
       CAST(o.gross - COALESCE(n.refund, 0.0) AS DOUBLE) AS net, n.refunded_at
FROM o LEFT JOIN netted n ON o.order_key = n.order_key
UNION ALL
SELECT oneid, record_id, channel, COALESCE(sales_channel, channel) AS sales_channel, order_key,
       refunded_at AS ordered_at, 'return_without_order' AS status, FALSE AS is_order,
       CAST(NULL AS STRING) AS category, 0.0 AS gross, CAST(amount AS DOUBLE) AS refund,
       CAST(-amount AS DOUBLE) AS net, refunded_at
FROM r WHERE NOT known
