-- A held success: the step is complete. ?1 now, ?2 id.
UPDATE steps SET state = 3, claim_token = NULL, updated_at = ?1 WHERE id = ?2
