-- The same failure for many steps. $1 ids, $2 StepExecutionResult JSON.
INSERT INTO step_errors (step_id, last_error) SELECT value, $2 FROM json_each($1) WHERE true
ON CONFLICT (step_id) DO UPDATE SET last_error = excluded.last_error
