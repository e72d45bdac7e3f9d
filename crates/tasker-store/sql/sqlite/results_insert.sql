-- Results of accepted successes. $1 [[id, result], ...] (each result a JSON object).
INSERT INTO step_results (step_id, results)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1) WHERE true
ON CONFLICT (step_id) DO UPDATE SET results = excluded.results
