-- Tasks by id, as one JSON array of [id, task_uuid, namespace, version, template, context (text),
-- correlation_id, priority, created_at]. $1 ids.
SELECT json_group_array(json_array(id, task_uuid, namespace, version, template, context, correlation_id, priority,
                                   created_at))
FROM tasks WHERE id IN (SELECT value FROM json_each($1))
