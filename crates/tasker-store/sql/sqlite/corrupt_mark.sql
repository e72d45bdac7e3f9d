-- A claimed step whose rows cannot make an event goes to error, if the claim that read it still holds it. ?1
-- now, ?2 id, ?3 the claim's token.
UPDATE steps SET state = 4, claim_token = NULL, updated_at = ?1 WHERE id = ?2 AND state = 2 AND claim_token = ?3
