-- Customer 360, WeChat following (workbench.customer360, events block): a OneID with WeChat events
-- before the cutoff follows the account unless it has an 'WeChat Unfollowed' event at or after its
-- latest 'WeChat Followed' one (or no follow at all); a OneID without WeChat events does not follow.
-- Tables: events, population (oneid). Parameters: <before_events>.
WITH per AS (
    SELECT oneid,
           MAX(CASE WHEN event_type = 'WeChat Followed' THEN event_time END) AS followed,
           MAX(CASE WHEN event_type = 'WeChat Unfollowed' THEN event_time END) AS unfollowed
    FROM events WHERE {before_events} AND family = 'wechat'
    GROUP BY oneid
)
SELECT p.oneid,
       COALESCE(per.oneid IS NOT NULL
                AND NOT (per.unfollowed IS NOT NULL AND (per.followed IS NULL OR per.unfollowed >= per.followed)),
                FALSE) AS wechat_following
FROM population p LEFT JOIN per ON p.oneid = per.oneid
