-- Completed results of the given steps (a claim batch's parents), as one JSON array of [step_id, results
-- text]. $1 ids.
SELECT COALESCE(json_agg(json_build_array(step_id, results)), '[]')::text FROM step_results
WHERE step_id IN (SELECT value::bigint FROM json_array_elements_text($1::json))
