-- RFM summary per OneID (workbench.segments.rfm.rfm_summary with order_id_col): a purchase is an
-- order of the OneID whose net (rounded to 9 decimals) is positive, at the order's earliest row;
-- monetary is the net of every row (returns included); only rows before <as_of> count.
-- Tables: purchases (the purchases view), population (oneid: who must appear).
-- Parameters: <as_of> (a UTC timestamp literal).
WITH tx AS (
    SELECT oneid, order_key, ordered_at, COALESCE(net, 0.0) AS amount FROM purchases
    WHERE oneid IS NOT NULL AND ordered_at IS NOT NULL AND ordered_at < {as_of}
), per_order AS (
    SELECT oneid, order_key, ROUND(SUM(amount), 9) AS net, MIN(ordered_at) AS at
    FROM tx GROUP BY oneid, order_key
), spend AS (
    SELECT oneid, ROUND(SUM(amount), 9) AS monetary FROM tx GROUP BY oneid
), buys AS (
    SELECT oneid, COUNT(*) AS frequency, MIN(at) AS first_purchase, MAX(at) AS last_purchase
    FROM per_order WHERE net > 0 GROUP BY oneid
), everyone AS (
    SELECT oneid FROM population UNION SELECT oneid FROM spend
)
SELECT e.oneid,
       (unix_micros({as_of}) - unix_micros(b.last_purchase)) / 86400000000.0 AS recency_days,
       CAST(COALESCE(b.frequency, 0) AS BIGINT) AS frequency,
       CAST(COALESCE(s.monetary, 0.0) AS DOUBLE) AS monetary,
       b.first_purchase, b.last_purchase
FROM everyone e LEFT JOIN spend s ON e.oneid = s.oneid LEFT JOIN buys b ON e.oneid = b.oneid
