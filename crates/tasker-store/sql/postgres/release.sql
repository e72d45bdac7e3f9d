-- Gives claims back without using an attempt: ready now. $1 now, $2 [[id, token], ...].
UPDATE steps SET state = 1, claim_token = NULL, attempts = attempts - 1, visible_at = $1, updated_at = $1
FROM (SELECT (e->>0)::bigint AS id, (e->>1)::bigint AS tok FROM json_array_elements($2::json) e) AS v
WHERE steps.id = v.id AND steps.claim_token = v.tok AND steps.state = 2
