-- The purchases view (workbench.canonical.net_purchases) at each cutoff of the table cutoffs: every
-- order before the cutoff, one row per order, with the refunds before the cutoff netted onto it;
-- refunds whose order is not in the data (before the cutoff) stay rows of their own (negative net,
-- is_order false). A NULL cutoff keeps every row, undated ones too. Rows carry their cutoff_id, so
-- model features at many cutoffs come from one pass.
-- Tables: orders, refunds, cutoffs (cutoff_id INT, cutoff TIMESTAMP).
WITH o AS (
    SELECT c.cutoff_id, o.* FROM orders o JOIN cutoffs c ON c.cutoff IS NULL OR o.ordered_at < c.cutoff
), keys AS (
    SELECT DISTINCT cutoff_id, order_key FROM o
), r AS (
    SELECT c.cutoff_id, r.*, (r.matched AND k.order_key IS NOT NULL) AS known
    FROM refunds r JOIN cutoffs c ON c.cutoff IS NULL OR r.refunded_at < c.cutoff
    LEFT JOIN keys k ON k.cutoff_id = c.cutoff_id AND k.order_key = r.order_key
), netted AS (
    SELECT cutoff_id, order_key, SUM(amount) AS refund, MAX(refunded_at) AS refunded_at
    FROM r WHERE known GROUP BY cutoff_id, order_key
)
SELECT o.cutoff_id, o.oneid, o.record_id, o.channel, o.sales_channel, o.order_key, o.ordered_at,
       CASE WHEN o.status = 'cancelled' THEN 'cancelled'
            WHEN COALESCE(n.refund, 0.0) > 0 OR o.status = 'refunded' THEN 'refunded'
            ELSE 'paid' END AS status,
       o.is_order, o.category, CAST(o.gross AS DOUBLE) AS gross,
       CAST(COALESCE(n.refund, 0.0) AS DOUBLE) AS refund,
       CAST(o.gross - COALESCE(n.refund, 0.0) AS DOUBLE) AS net, n.refunded_at
FROM o LEFT JOIN netted n ON o.cutoff_id = n.cutoff_id AND o.order_key = n.order_key
UNION ALL
SELECT cutoff_id, oneid, record_id, channel, COALESCE(sales_channel, channel) AS sales_channel, order_key,
       refunded_at AS ordered_at, 'return_without_order' AS status, FALSE AS is_order,
       CAST(NULL AS STRING) AS category, 0.0 AS gross, CAST(amount AS DOUBLE) AS refund,
       CAST(-amount AS DOUBLE) AS net, refunded_at
FROM r WHERE NOT known
