-- Pushes the deadline of a claim still held. ?1 deadline, ?2 id, ?3 token.
UPDATE steps SET visible_at = ?1 WHERE id = ?2 AND claim_token = ?3 AND state = 2
