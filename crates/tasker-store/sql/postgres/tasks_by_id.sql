-- Tasks by id, as one JSON array of [id, task_uuid, namespace, version, template, context (text),
-- correlation_id, priority, created_at]. $1 ids.
SELECT COALESCE(json_agg(json_build_array(id, task_uuid, namespace, version, template, context, correlation_id,
                                          priority, created_at)), '[]')::text
FROM tasks WHERE id IN (SELECT value::bigint FROM json_array_elements_text($1::json))
