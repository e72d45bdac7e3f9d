-- The held successes are complete. $1 now, $2 ids.
UPDATE steps SET state = 3, claim_token = NULL, updated_at = $1
WHERE id IN (SELECT value::bigint FROM json_array_elements_text($2::json))
