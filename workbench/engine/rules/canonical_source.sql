-- One channel's cleaned rows with each record's OneID (workbench.canonical.linked_cleaned) and the
-- record's time (workbench.canonical.build.record_times: the first present of its role's time fields).
-- A record the registry does not know keeps a NULL OneID (the stage then stops with what to rerun).
-- _row is the row's position in the cleaned file: with _m (the mapping's position) it orders the
-- tables as the local engine writes them.
-- Tables: cleaned (the channel's cleaned Parquet, with _row), registry (record_id, oneid of the
-- channel). Parameters: channel, role (string literals), m, at (an expression), fields (the
-- mapping's canonical fields as typed expressions, each after a comma, or nothing).
SELECT r.oneid, c.record_id, {channel} AS channel, {role} AS role, {m} AS _m, c._row, {at} AS `at`{fields}
FROM cleaned c LEFT JOIN registry r ON r.record_id = c.record_id
