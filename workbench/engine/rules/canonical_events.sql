-- One part of the canonical events of an events channel (CanonicalBuild._events): the row's own event
-- (part 0: its event type, quantity default 1) or an extra event (its type; it exists where its
-- quantity is > 0 or its time present), with the row's campaign, product, category, rating and
-- platform. Rows without an event type drop out; the family is the vocabulary's (custom for a type
-- of the brand's own).
-- Tables: src, families (event_type STRING, family STRING). Parameters: event_time, event_type,
-- quantity, value, duration (expressions over src), keep (a condition over src), sub (the part).
WITH part AS (
    SELECT oneid, record_id, channel, {event_time} AS event_time, {event_type} AS event_type,
           {quantity} AS quantity, {value} AS _value, {duration} AS duration_seconds,
           campaign, product, category, rating, platform, _m, _row
    FROM src WHERE {keep}
)
SELECT p.oneid, p.record_id, p.channel, p.event_time, p.event_type, COALESCE(f.family, 'custom') AS family,
       p.quantity, p._value AS `value`, p.duration_seconds, p.campaign, p.product, p.category, p.rating,
       p.platform, p._m, {sub} AS _sub, p._row, CAST(NULL AS STRING) AS _key
FROM part p LEFT JOIN families f ON f.event_type = p.event_type
WHERE p.event_type IS NOT NULL
