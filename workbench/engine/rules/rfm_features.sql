-- The models' order features at each cutoff (workbench.models.dataset.rfm_features, as
-- build_features calls it): per cutoff and OneID with a paid order before it — orders, distinct
-- purchase days, revenue, average order value, days since the first / last order, mean days
-- between purchase days and the recency ratio, orders per 30 days observed (from the earliest
-- purchases row, or the OneID's first record when later; at least 30 days), orders and revenue in
-- each window (<windows>) and the 90-day order trend.
-- Tables: purchases (purchases.sql with cutoff_id), cutoffs, records.
-- Parameters: <windows> (the per-window aggregates, made from the window lengths).
WITH p AS (
    SELECT p.cutoff_id, c.cutoff, p.oneid, p.ordered_at AS ts, COALESCE(p.net, 0.0) AS value,
           DATE_TRUNC('DAY', p.ordered_at) AS day
    FROM purchases p JOIN cutoffs c ON p.cutoff_id = c.cutoff_id
    WHERE p.is_order AND p.ordered_at < c.cutoff
), starts AS (
    SELECT cutoff_id, MIN(ordered_at) AS start FROM purchases GROUP BY cutoff_id
), seen AS (
    SELECT c.cutoff_id, r.oneid, MIN(r.at) AS first_seen
    FROM records r JOIN cutoffs c ON r.at < c.cutoff GROUP BY c.cutoff_id, r.oneid
), g AS (
    SELECT cutoff_id, cutoff, oneid,
           CAST(COUNT(*) AS DOUBLE) AS orders, CAST(COUNT(DISTINCT day) AS DOUBLE) AS purchase_days,
           SUM(value) AS revenue, MIN(ts) AS first_ts, MAX(ts) AS last_ts,
           (unix_micros(MAX(day)) - unix_micros(MIN(day))) / 86400000000.0 AS span,
           {windows},
           CAST(COUNT_IF(ts >= cutoff - INTERVAL 90 DAYS) - COUNT_IF(ts >= cutoff - INTERVAL 180 DAYS
                AND ts < cutoff - INTERVAL 90 DAYS) AS DOUBLE) AS order_trend_90d
    FROM p GROUP BY cutoff_id, cutoff, oneid
), f AS (
    SELECT g.*, s.first_seen, st.start,
           (unix_micros(g.cutoff) - unix_micros(g.first_ts)) / 86400000000.0 AS days_since_first_order,
           (unix_micros(g.cutoff) - unix_micros(g.last_ts)) / 86400000000.0 AS days_since_last_order,
           CASE WHEN g.purchase_days > 1 THEN g.span / (g.purchase_days - 1) END AS mean_days_between_orders
    FROM g JOIN starts st ON g.cutoff_id = st.cutoff_id
    LEFT JOIN seen s ON g.cutoff_id = s.cutoff_id AND g.oneid = s.oneid
), observed AS (
    SELECT f.*, LEAST(CASE WHEN first_seen > start THEN first_seen ELSE start END, first_ts) AS since FROM f
)
SELECT cutoff_id, oneid, orders, purchase_days, revenue, revenue / orders AS avg_order_value,
       days_since_first_order, days_since_last_order, mean_days_between_orders,
       days_since_last_order / mean_days_between_orders AS recency_ratio,
       orders / GREATEST((unix_micros(cutoff) - unix_micros(since)) / 86400000000.0, 30.0) * 30.0 AS orders_per_30d,
       * EXCEPT (cutoff_id, oneid, orders, purchase_days, revenue, cutoff, first_ts, last_ts, span, first_seen, start,
                 since, days_since_first_order, days_since_last_order, mean_days_between_orders, order_trend_90d),
       order_trend_90d
FROM observed
