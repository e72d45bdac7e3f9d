-- The held successes are complete. $1 now, $2 ids (bigint[]).
UPDATE steps SET state = 3, claim_token = NULL, updated_at = $1 WHERE id = ANY($2)
