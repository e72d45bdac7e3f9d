-- The last checkpoints of the given steps (a claim batch): rows (step_id, checkpoint). $1 ids (bigint[]).
SELECT step_id, checkpoint FROM step_checkpoints WHERE step_id = ANY($1)
