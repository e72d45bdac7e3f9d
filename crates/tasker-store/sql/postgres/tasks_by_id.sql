-- Tasks by id: rows (id, task_uuid, namespace, version, template, context, correlation_id, priority,
-- created_at). $1 ids (bigint[]).
SELECT id, task_uuid, namespace, version, template, context, correlation_id, priority::bigint, created_at
FROM tasks WHERE id = ANY($1)
