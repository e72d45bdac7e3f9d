-- A step goes to error (a corrupt row, no attempts left, a permanent failure). ?1 now, ?2 id.
UPDATE steps SET state = 4, claim_token = NULL, updated_at = ?1 WHERE id = ?2
