-- Claims one picked step: a fresh 62-bit token, the deadline, one more attempt. ?1 now, ?2 deadline, ?3 id.
-- Returns what its event needs: (task_id, idx, attempts, claim_token, step_uuid, created_at).
UPDATE steps SET state = 2, claim_token = random() & 4611686018427387903, claimed_at = ?1, visible_at = ?2,
       attempts = attempts + 1, updated_at = ?1
WHERE id = ?3
RETURNING task_id, idx, attempts, claim_token, step_uuid, created_at
