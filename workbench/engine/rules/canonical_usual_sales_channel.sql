-- Where the orders of one channel are usually sold (CanonicalBuild.finish: pandas' mode of their sales
-- channel): the most frequent present sales channel, then the smallest; no row when none is present.
-- Tables: order_keys (order_key, sales_channel, channel: every order of the layer).
-- Parameters: channel (a string literal).
SELECT sales_channel FROM order_keys
WHERE channel = {channel} AND sales_channel IS NOT NULL
GROUP BY sales_channel
ORDER BY COUNT(*) DESC, sales_channel
LIMIT 1
