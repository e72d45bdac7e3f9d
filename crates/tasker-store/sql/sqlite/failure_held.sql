-- Attempts of a step a failure's token still holds. ?1 id, ?2 token. (attempts, max_attempts), or no row.
SELECT attempts, max_attempts FROM steps WHERE id = ?1 AND claim_token = ?2 AND state = 2
