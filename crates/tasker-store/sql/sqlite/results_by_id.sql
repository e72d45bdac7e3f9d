-- Completed results of the given steps (a claim batch's parents), as one JSON array of [step_id, results
-- text]. $1 ids.
SELECT json_group_array(json_array(step_id, results)) FROM step_results
WHERE step_id IN (SELECT value FROM json_each($1))
