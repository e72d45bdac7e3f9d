-- A step a checkpoint's token still holds: (attempts, claimed_at), or no row. ?1 id, ?2 token.
SELECT attempts, claimed_at FROM steps WHERE id = ?1 AND claim_token = ?2 AND state = 2
