-- Which successes still hold their step: one JSON array of [id, task_id, idx]. $1 [[id, token], ...].
SELECT json_group_array(json_array(steps.id, steps.task_id, steps.idx))
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS tok FROM json_each($1)) AS v
JOIN steps ON steps.id = v.id AND steps.claim_token = v.tok AND steps.state = 2
