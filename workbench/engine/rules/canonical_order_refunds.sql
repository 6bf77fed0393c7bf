-- Refunds said on order rows (CanonicalBuild._orders): an order row's refund amount (taken as
-- positive; none on a cancelled row) at its refund time, else at the order's own time (marketplace
-- exports have no refund date); matched to its own order.
-- Tables: lines (canonical_order_lines.sql).
SELECT oneid, record_id, channel, order_key, refund_time AS refunded_at, refund AS amount, TRUE AS matched,
       'order' AS source, sales_channel, _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM lines WHERE refund > 0
