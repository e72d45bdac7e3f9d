-- Which successes still hold their step, locked in id order: rows (id, task_id, idx). $1 ids, $2 tokens
-- (bigint[], pairwise).
SELECT s.id, s.task_id, s.idx::bigint FROM steps s
JOIN unnest($1::bigint[], $2::bigint[]) AS v(id, tok) ON s.id = v.id AND s.claim_token = v.tok AND s.state = 2
ORDER BY s.id FOR UPDATE OF s
