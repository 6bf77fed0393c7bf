-- The canonical profiles (CanonicalBuild._profile): one row per record of a profile mapping.
-- Tables: src.
SELECT oneid, record_id, channel, `at`, member_id, member_level, registered_at, updated_at,
       _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
