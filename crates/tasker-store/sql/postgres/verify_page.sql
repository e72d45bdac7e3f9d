-- A page of tasks with their final step (the template's last) and its results. $1 after id, $2 limit.
SELECT t.id, t.task_uuid, t.template, t.context, s.state::bigint, r.results
FROM tasks t JOIN steps s ON s.id = t.first_step + t.step_count - 1
LEFT JOIN step_results r ON r.step_id = s.id
WHERE t.id > $1 ORDER BY t.id LIMIT $2
