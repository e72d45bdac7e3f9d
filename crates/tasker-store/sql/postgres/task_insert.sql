-- One task created by a client. $1 id, $2 task uuid, $3 namespace, $4 name, $5 version, $6 template,
-- $7 context JSON, $8 correlation id, $9 priority, $10 first step id, $11 step count, $12 now.
INSERT INTO tasks (id, task_uuid, namespace, name, version, template, context, correlation_id, priority, first_step,
                   step_count, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
