-- Results of accepted successes. $1 [[id, result], ...] (each result a JSON object, stored as given).
INSERT INTO step_results (step_id, results)
SELECT (e->>0)::bigint, (e->1)::text FROM json_array_elements($1::json) e
ON CONFLICT (step_id) DO UPDATE SET results = excluded.results
