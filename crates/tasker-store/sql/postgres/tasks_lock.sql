-- Locks tasks whose other sink steps a completion checks, in id order: two batches completing the last two
-- sinks of one task serialise here, so the second sees the first's committed step and reports the task
-- complete. $1 task ids (bigint[]).
SELECT id FROM tasks WHERE id = ANY($1) ORDER BY id FOR UPDATE
