-- Customer 360, digital sessions (workbench.customer360): a OneID's dated events of the session
-- families (<families>), in time order, start a new session when they are the OneID's first or
-- come more than <gap_minutes> minutes after the previous one. As the local engine has always
-- counted, the very first of these events (the earliest of the smallest OneID) starts none.
-- Tables: events, population (oneid). Parameters: <before_events>, <families>, <gap_minutes>.
WITH d AS (
    SELECT oneid, event_time,
           LAG(event_time) OVER (PARTITION BY oneid ORDER BY event_time) AS previous
    FROM events
    WHERE {before_events} AND family IN ({families}) AND event_time IS NOT NULL AND oneid IS NOT NULL
), starts AS (
    SELECT oneid, COUNT_IF(previous IS NULL
                           OR unix_micros(event_time) - unix_micros(previous) > {gap_minutes} * 60000000) AS sessions
    FROM d GROUP BY oneid
), first_person AS (
    SELECT MIN(oneid) AS oneid FROM d
)
SELECT p.oneid,
       CAST(COALESCE(s.sessions, 0) - CASE WHEN p.oneid = f.oneid THEN 1 ELSE 0 END AS BIGINT) AS sessions
FROM population p LEFT JOIN starts s ON p.oneid = s.oneid CROSS JOIN first_person f
