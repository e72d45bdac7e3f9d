-- A retryable failure: ready again after the backoff. ?1 id, ?2 visible at, ?3 now.
UPDATE steps SET state = 1, claim_token = NULL, visible_at = ?2, updated_at = ?3 WHERE id = ?1
