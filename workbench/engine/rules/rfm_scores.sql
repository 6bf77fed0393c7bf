-- RFM scores (workbench.segments.rfm.rfm_scores): score = 1 + floor(bins * (rank_min - 1) / n)
-- over the n OneIDs with a purchase, rank_min the rank with ties at their lowest rank (so equal
-- values always score the same); best = most recent, most frequent, highest spend. Then the
-- segment of (r_score, f_score) from the segment map (workbench/conf/rfm_segments.yaml).
-- Tables: summary (rfm_summary.sql), segment_map (r, f, segment, position).
-- Parameters: <bins>, <no_purchase> (the map's label for OneIDs without a purchase, quoted).
WITH scored AS (
    SELECT * FROM summary WHERE frequency > 0 AND recency_days IS NOT NULL AND monetary IS NOT NULL
), n AS (
    SELECT COUNT(*) AS n FROM scored
), ranked AS (
    SELECT oneid,
           RANK() OVER (ORDER BY recency_days DESC) AS r_rank,
           RANK() OVER (ORDER BY frequency) AS f_rank,
           RANK() OVER (ORDER BY monetary) AS m_rank
    FROM scored
), scores AS (
    SELECT oneid,
           CAST(1 + FLOOR({bins} * (r_rank - 1) / n) AS INT) AS r_score,
           CAST(1 + FLOOR({bins} * (f_rank - 1) / n) AS INT) AS f_score,
           CAST(1 + FLOOR({bins} * (m_rank - 1) / n) AS INT) AS m_score
    FROM ranked CROSS JOIN n
)
SELECT s.*, c.r_score, c.f_score, c.m_score,
       CONCAT(CAST(c.r_score AS STRING), CAST(c.f_score AS STRING), CAST(c.m_score AS STRING)) AS rfm_cell,
       CASE WHEN c.r_score IS NULL THEN {no_purchase} ELSE m.segment END AS segment
FROM summary s LEFT JOIN scores c ON s.oneid = c.oneid
LEFT JOIN segment_map m ON c.r_score = m.r AND c.f_score = m.f
