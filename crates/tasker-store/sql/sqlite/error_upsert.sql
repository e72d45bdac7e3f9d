-- The last failure of a step. ?1 id, ?2 StepExecutionResult JSON.
INSERT INTO step_errors (step_id, last_error) VALUES (?1, ?2)
ON CONFLICT (step_id) DO UPDATE SET last_error = excluded.last_error
