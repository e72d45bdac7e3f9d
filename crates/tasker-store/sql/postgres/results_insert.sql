-- Results of accepted successes, stored as given. $1 step ids (bigint[]), $2 StepExecutionResult JSON texts
-- (text[], pairwise).
INSERT INTO step_results (step_id, results)
SELECT id, r FROM unnest($1::bigint[], $2::text[]) AS v(id, r)
ON CONFLICT (step_id) DO UPDATE SET results = excluded.results
