-- Children lose one pending parent per parent completed; those left with none are ready. $1 now, $2 ids,
-- $3 parents completed (bigint[], pairwise).
UPDATE steps SET pending_parents = pending_parents - v.n,
       state = CASE WHEN pending_parents = v.n THEN 1 ELSE state END,
       visible_at = CASE WHEN pending_parents = v.n THEN $1 ELSE visible_at END, updated_at = $1
FROM unnest($2::bigint[], $3::bigint[]) AS v(id, n)
WHERE steps.id = v.id AND steps.state = 0
