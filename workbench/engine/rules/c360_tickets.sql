-- Customer 360, service tickets (workbench.customer360, events block): per OneID, its
-- 'Service Ticket Opened' events before the cutoff whose category is one of the analysis settings'
-- problem categories (<problems>: a list of literals, NULL for none), and their mean rating (rated
-- tickets only; NULL without one).
-- Tables: events, population (oneid). Parameters: <before_events>, <problems>.
WITH per AS (
    SELECT oneid, COUNT_IF(category IN ({problems})) AS problem_tickets, AVG(rating) AS service_rating
    FROM events WHERE {before_events} AND event_type = 'Service Ticket Opened'
    GROUP BY oneid
)
SELECT p.oneid, CAST(COALESCE(per.problem_tickets, 0) AS BIGINT) AS problem_tickets, per.service_rating
FROM population p LEFT JOIN per ON p.oneid = per.oneid
