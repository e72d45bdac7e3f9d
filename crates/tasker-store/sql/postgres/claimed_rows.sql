-- The claimed rows, as one JSON array of [id, task_id, idx, attempts, claim_token, step_uuid, created_at]. $1 ids.
SELECT COALESCE(json_agg(json_build_array(id, task_id, idx, attempts, claim_token, step_uuid, created_at)), '[]')::text
FROM steps WHERE id IN (SELECT value::bigint FROM json_array_elements_text($1::json))
