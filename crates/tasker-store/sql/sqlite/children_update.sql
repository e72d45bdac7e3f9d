-- Children lose one pending parent per parent completed; those left with none are ready. $1 now,
-- $2 [[id, parents completed], ...].
UPDATE steps SET pending_parents = pending_parents - v.n,
       state = CASE WHEN pending_parents = v.n THEN 1 ELSE state END,
       visible_at = CASE WHEN pending_parents = v.n THEN $1 ELSE visible_at END, updated_at = $1
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS n FROM json_each($2)) AS v
WHERE steps.id = v.id AND steps.state = 0
