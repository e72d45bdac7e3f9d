-- Completed results of the given steps (a claim batch's parents): rows (step_id, results). $1 ids (bigint[]).
SELECT step_id, results FROM step_results WHERE step_id = ANY($1)
