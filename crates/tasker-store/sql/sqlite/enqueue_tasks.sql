-- One row per task. $1 [[id, task uuid, correlation id, first step], ...], $2 namespace, $3 name,
-- $4 version, $5 template, $6 context, $7 step count, $8 now.
INSERT INTO tasks (id, task_uuid, namespace, name, version, template, context, correlation_id, first_step,
                   step_count, created_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), $2, $3, $4, $5, $6, json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), $7, $8
FROM json_each($1)
