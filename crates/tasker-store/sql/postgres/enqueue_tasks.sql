-- One row per task. $1 [[id, task uuid, correlation id, first step], ...], $2 namespace, $3 name,
-- $4 version, $5 template, $6 context, $7 step count, $8 now.
INSERT INTO tasks (id, task_uuid, namespace, name, version, template, context, correlation_id, first_step,
                   step_count, created_at)
SELECT (e->>0)::bigint, e->>1, $2, $3, $4, $5, $6, e->>2, (e->>3)::bigint, $7::bigint, $8
FROM json_array_elements($1::json) e
