-- Pushes the deadline of the claims still held. $1 deadline, $2 ids, $3 tokens (bigint[], pairwise).
UPDATE steps SET visible_at = $1
FROM unnest($2::bigint[], $3::bigint[]) AS v(id, tok)
WHERE steps.id = v.id AND steps.claim_token = v.tok AND steps.state = 2
