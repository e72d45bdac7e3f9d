-- Attempts of a step a failure's token still holds (locked). $1 id, $2 token.
SELECT attempts::bigint, max_attempts::bigint FROM steps WHERE id = $1 AND claim_token = $2 AND state = 2 FOR UPDATE
