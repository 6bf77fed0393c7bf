-- Customer 360, favourite and top categories (workbench.customer360, orders block): per OneID, the
-- categories of its purchases before the cutoff (the purchases view) ranked by net spend, those
-- above 0 only, ties in name order: the first, and the first three comma-separated.
-- Tables: purchases, population (oneid). Parameters: none.
WITH spend AS (
    SELECT oneid, category, SUM(net) AS net FROM purchases WHERE category IS NOT NULL GROUP BY oneid, category
), ranked AS (
    SELECT oneid, category, ROW_NUMBER() OVER (PARTITION BY oneid ORDER BY net DESC, category) AS n
    FROM spend WHERE net > 0
), per AS (
    SELECT oneid, MAX(CASE WHEN n = 1 THEN category END) AS c1, MAX(CASE WHEN n = 2 THEN category END) AS c2,
           MAX(CASE WHEN n = 3 THEN category END) AS c3
    FROM ranked WHERE n <= 3 GROUP BY oneid
)
SELECT p.oneid, per.c1 AS favourite_category,
       CASE WHEN per.c1 IS NOT NULL THEN CONCAT_WS(',', per.c1, per.c2, per.c3) END AS top_categories
FROM population p LEFT JOIN per ON p.oneid = per.oneid
