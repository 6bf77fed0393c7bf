-- Customer 360, revenue per sales channel (workbench.customer360, orders block): per OneID, the net
-- revenue of its purchases before the cutoff per sales channel of the layer (the order's sales
-- channel, else its channel; <revenues>: one sum per sales channel, <filled>: each as 0 when none),
-- and the sales channel with the highest (<main>: the first of the highest in name order; NULL
-- when none is above 0).
-- Tables: purchases, population (oneid). Parameters: <revenues>, <filled>, <main>.
WITH per AS (
    SELECT oneid, {revenues}
    FROM (SELECT oneid, COALESCE(sales_channel, channel) AS sales, net FROM purchases) AS s
    GROUP BY oneid
), filled AS (
    SELECT p.oneid, {filled} FROM population p LEFT JOIN per ON p.oneid = per.oneid
)
SELECT filled.*, {main} AS main_sales_channel FROM filled
