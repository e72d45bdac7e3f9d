-- Gives claims back without using an attempt: ready now. $1 now, $2 ids, $3 tokens (bigint[], pairwise).
UPDATE steps SET state = 1, claim_token = NULL, attempts = attempts - 1, visible_at = $1, updated_at = $1
FROM unnest($2::bigint[], $3::bigint[]) AS v(id, tok)
WHERE steps.id = v.id AND steps.claim_token = v.tok AND steps.state = 2
