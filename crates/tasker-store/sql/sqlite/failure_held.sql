-- A step a failure's token still holds: (attempts, max_attempts, claimed_at), or no row. ?1 id, ?2 token.
SELECT attempts, max_attempts, claimed_at FROM steps WHERE id = ?1 AND claim_token = ?2 AND state = 2
