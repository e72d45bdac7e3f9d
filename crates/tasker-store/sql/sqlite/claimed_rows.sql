-- The claimed rows, as one JSON array of [id, task_id, idx, attempts, claim_token, step_uuid, created_at]. $1 ids.
SELECT json_group_array(json_array(id, task_id, idx, attempts, claim_token, step_uuid, created_at))
FROM steps WHERE id IN (SELECT value FROM json_each($1))
