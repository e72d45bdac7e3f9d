-- The same failure for many steps. $1 ids (bigint[]), $2 StepExecutionResult JSON.
INSERT INTO step_errors (step_id, last_error) SELECT unnest($1::bigint[]), $2
ON CONFLICT (step_id) DO UPDATE SET last_error = excluded.last_error
