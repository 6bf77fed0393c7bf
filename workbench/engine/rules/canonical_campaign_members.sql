-- The rows of a campaign_members mapping (CanonicalBuild._campaign_members): one row per source row.
-- Tables: src.
SELECT oneid, record_id, channel, campaign_id, campaign_name, `group`, sent_at, response_window_days,
       _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
