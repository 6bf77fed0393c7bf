-- Customer 360, e-mail rates (workbench.customer360, events block): per OneID, its e-mail
-- campaigns (the event's campaign, else its record id) among the e-mail family's events before the
-- cutoff; the open rate is the campaigns with an 'Email Opened' or 'Email Link Clicked' event per
-- campaign with an 'Email Sent' event, the click rate those with an 'Email Link Clicked' event per
-- campaign sent; NULL when none was sent.
-- Tables: events, population (oneid). Parameters: <before_events>.
WITH pairs AS (
    SELECT oneid, COALESCE(campaign, record_id) AS campaign,
           MAX(event_type = 'Email Sent') AS sent,
           MAX(event_type IN ('Email Opened', 'Email Link Clicked')) AS opened,
           MAX(event_type = 'Email Link Clicked') AS clicked
    FROM events WHERE {before_events} AND family = 'email'
    GROUP BY oneid, COALESCE(campaign, record_id)
), per AS (
    SELECT oneid, COUNT_IF(sent) AS sent, COUNT_IF(opened) AS opened, COUNT_IF(clicked) AS clicked
    FROM pairs GROUP BY oneid
)
SELECT p.oneid,
       CASE WHEN per.sent > 0 THEN CAST(per.opened AS DOUBLE) / per.sent END AS email_open_rate,
       CASE WHEN per.sent > 0 THEN CAST(per.clicked AS DOUBLE) / per.sent END AS email_click_rate
FROM population p LEFT JOIN per ON p.oneid = per.oneid
