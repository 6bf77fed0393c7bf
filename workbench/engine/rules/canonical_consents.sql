-- The rows of a consents mapping (CanonicalBuild._consents): purpose (lower case: canonical.build.consent_purpose_key), granted, at.
-- Tables: src.
SELECT oneid, record_id, channel, lower(purpose) AS purpose, granted, consented_at AS `at`,
       'consent record' AS event, CAST(0 AS BIGINT) AS priority, _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
