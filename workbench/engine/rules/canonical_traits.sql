-- One person trait of the canonical traits (CanonicalBuild._traits): the trait's value on each record
-- of the channel where it is present and not a placeholder (a placeholder phone or e-mail is nobody's
-- trait), with the record's time and the source's rank (profile mappings first, then the others in
-- mapping order). A birth date is written as yyyy-MM-dd.
-- Tables: src. Parameters: trait (a string literal), value / placeholder (columns of src: the trait's
-- text and whether it is a placeholder), rank (the source's rank), sub (the trait's position).
SELECT oneid, record_id, channel, role, CAST({rank} AS BIGINT) AS `rank`, `at`, {trait} AS trait,
       {value} AS `value`, _m, {sub} AS _sub, _row, CAST(NULL AS STRING) AS _key
FROM src
WHERE {value} IS NOT NULL AND NOT COALESCE({placeholder}, FALSE)
