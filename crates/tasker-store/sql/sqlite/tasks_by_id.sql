-- A task, as its events need it. ?1 id. (task_uuid, namespace, version, template, context, correlation_id,
-- priority, created_at).
SELECT task_uuid, namespace, version, template, context, correlation_id, priority, created_at FROM tasks
WHERE id = ?1
