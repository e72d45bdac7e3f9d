-- A success whose token still holds its step: complete. ?1 now, ?2 id, ?3 token. Returns (task_id, idx), or no
-- row when the claim no longer holds the step (refused).
UPDATE steps SET state = 3, claim_token = NULL, updated_at = ?1
WHERE id = ?2 AND claim_token = ?3 AND state = 2
RETURNING task_id, idx
