-- A success whose token still holds its step: (task_id, idx), or no row (refused). ?1 id, ?2 token.
SELECT task_id, idx FROM steps WHERE id = ?1 AND claim_token = ?2 AND state = 2
