-- Consents said by events (CanonicalBuild._events): an event of workbench.roles.CONSENT_EVENTS
-- (unsubscribe, WeChat follow / unfollow) gives its purpose, granted or not, at the event's time;
-- priority 2 when granted, else 1.
-- Tables: events_of_channel (the channel's canonical events with their sort columns),
-- consent_events (event_type STRING, purpose STRING, granted BOOLEAN).
SELECT e.oneid, e.record_id, e.channel, c.purpose, c.granted, e.event_time AS `at`, e.event_type AS event,
       CAST(CASE WHEN c.granted THEN 2 ELSE 1 END AS BIGINT) AS priority, e._m, e._sub, e._row, e._key
FROM events_of_channel e JOIN consent_events c ON c.event_type = e.event_type
