-- Claims the picked steps: a fresh 62-bit token, the deadline, one more attempt. $1 now, $2 deadline, $3 ids
-- (bigint[]). Rows (id, task_id, idx, attempts, claim_token, step_uuid, created_at).
UPDATE steps SET state = 2, claim_token = floor(random() * 4611686018427387904)::bigint, claimed_at = $1,
       visible_at = $2, attempts = attempts + 1, updated_at = $1
WHERE id = ANY($3)
RETURNING id, task_id, idx::bigint, attempts::bigint, claim_token, step_uuid, created_at
