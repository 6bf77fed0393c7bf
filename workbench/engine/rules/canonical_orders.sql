-- The canonical orders of an orders channel whose rows are orders (grain: order): one order per row;
-- a cancelled order stays (is_order false, gross 0) so it can be counted.
-- Tables: lines (canonical_order_lines.sql).
SELECT oneid, record_id, channel, order_key, order_id, ordered_at, status, NOT cancelled AS is_order,
       paid AS gross, category, product, quantity, CAST(1 AS BIGINT) AS lines, sales_channel, store,
       _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM lines
