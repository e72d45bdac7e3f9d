-- The result of an accepted success. ?1 step id, ?2 StepExecutionResult JSON text.
INSERT INTO step_results (step_id, results) VALUES (?1, ?2)
ON CONFLICT (step_id) DO UPDATE SET results = excluded.results
