-- Gives a claim back without using an attempt: ready now. ?1 now, ?2 id, ?3 token.
UPDATE steps SET state = 1, claim_token = NULL, attempts = attempts - 1, visible_at = ?1, updated_at = ?1
WHERE id = ?2 AND claim_token = ?3 AND state = 2
