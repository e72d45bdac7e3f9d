-- The same failure for many steps. $1 ids, $2 StepExecutionResult JSON.
INSERT INTO step_errors (step_id, last_error) SELECT value::bigint, $2 FROM json_array_elements_text($1::json)
ON CONFLICT (step_id) DO UPDATE SET last_error = excluded.last_error
