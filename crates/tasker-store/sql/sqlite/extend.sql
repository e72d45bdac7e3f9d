-- Pushes the deadline of the claims still held. $1 deadline, $2 [[id, token], ...].
UPDATE steps SET visible_at = $1
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS tok FROM json_each($2)) AS v
WHERE steps.id = v.id AND steps.claim_token = v.tok AND steps.state = 2
