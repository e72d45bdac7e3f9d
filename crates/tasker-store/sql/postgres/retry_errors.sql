-- Every step in error is ready again now, with a full set of attempts. $1 now.
UPDATE steps SET state = 1, attempts = 0, claim_token = NULL, visible_at = $1, updated_at = $1 WHERE state = 4
