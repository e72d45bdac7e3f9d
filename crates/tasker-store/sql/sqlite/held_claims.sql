-- Claims held, oldest first. $1 limit.
SELECT id, claim_token, step_uuid, attempts, visible_at FROM steps WHERE state = 2 ORDER BY claimed_at LIMIT $1
