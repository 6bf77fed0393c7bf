-- The canonical order lines (CanonicalBuild._orders) of one orders channel: every row is a line of
-- the order named by its key (src.order_key: <channel>:<key fields>, else the record id); a missing
-- status means paid; a missing amount counts 0; a cancelled line keeps its amount here.
-- Tables: src. The view it makes is read by canonical_orders*.sql and canonical_order_refunds.sql.
SELECT oneid, record_id, channel, order_key, order_id, ordered_at, category, product, quantity,
       COALESCE(amount, 0.0) AS amount, COALESCE(status, 'paid') = 'cancelled' AS cancelled,
       COALESCE(status, 'paid') AS status,
       CASE WHEN COALESCE(status, 'paid') = 'cancelled' THEN 0.0 ELSE COALESCE(amount, 0.0) END AS paid,
       COALESCE(sales_channel, channel) AS sales_channel, store,
       CASE WHEN COALESCE(status, 'paid') = 'cancelled' THEN 0.0 ELSE ABS(COALESCE(refund_amount, 0.0)) END AS refund,
       COALESCE(refunded_at, ordered_at) AS refund_time,
       _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
