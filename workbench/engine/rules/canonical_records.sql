-- The canonical records (workbench.canonical.build.CanonicalBuild.add_channel): one row per source
-- record of one channel with its OneID, channel, role and time (the first present of its role's
-- time fields, already in src.at).
-- Tables: src (one channel's cleaned rows joined to the OneID registry; see spark_canonical).
SELECT oneid, record_id, channel, role, `at`, _m, 0 AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
