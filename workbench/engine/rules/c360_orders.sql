-- Customer 360, orders block (workbench.customer360): from the purchases view (purchases.sql) at
-- the cutoff — paid orders (cancelled excluded), cancelled and refunded orders, gross / refunds /
-- net revenue (rounded to 6 decimals), net per paid order, first / latest paid order and days from
-- the latest to <reference> (the as-of date).
-- Tables: purchases, population (oneid). Parameters: <reference>.
WITH per AS (
    SELECT oneid,
           COUNT_IF(is_order) AS orders,
           COUNT_IF(status = 'cancelled') AS cancelled_orders,
           COUNT_IF(is_order AND refund > 0) AS refunded_orders,
           ROUND(SUM(gross), 6) AS gross_revenue, ROUND(SUM(refund), 6) AS refunds, ROUND(SUM(net), 6) AS net_revenue,
           MIN(CASE WHEN is_order THEN ordered_at END) AS first_order_at,
           MAX(CASE WHEN is_order THEN ordered_at END) AS last_order_at
    FROM purchases GROUP BY oneid
)
SELECT p.oneid,
       CAST(COALESCE(o.orders, 0) AS BIGINT) AS orders,
       CAST(COALESCE(o.cancelled_orders, 0) AS BIGINT) AS cancelled_orders,
       CAST(COALESCE(o.refunded_orders, 0) AS BIGINT) AS refunded_orders,
       COALESCE(o.gross_revenue, 0.0) AS gross_revenue, COALESCE(o.refunds, 0.0) AS refunds,
       COALESCE(o.net_revenue, 0.0) AS net_revenue,
       CASE WHEN o.orders > 0 THEN o.net_revenue / o.orders END AS avg_order_value,
       o.first_order_at, o.last_order_at,
       CAST(unix_micros({reference}) - unix_micros(o.last_order_at) AS DOUBLE) / 86400000000.0D AS days_since_last_order
FROM population p LEFT JOIN per o ON p.oneid = o.oneid
