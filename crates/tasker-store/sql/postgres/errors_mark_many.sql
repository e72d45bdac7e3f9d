-- Steps go to error. $1 now, $2 ids (bigint[]).
UPDATE steps SET state = 4, claim_token = NULL, updated_at = $1 WHERE id = ANY($2)
