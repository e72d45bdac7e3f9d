-- The last checkpoints of a claim batch's steps. ?1 their ids as a JSON array: one statement per batch (a
-- rowid probe per id inside SQLite) instead of one statement per step; the table holds only steps that
-- yielded, and never more than one row per step.
SELECT step_id, checkpoint FROM step_checkpoints WHERE step_id IN (SELECT value FROM json_each(?1))
