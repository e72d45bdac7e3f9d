-- A task's place: (id, first_step, step_count, template), or no row. $1 task uuid.
SELECT id, first_step, CAST(step_count AS BIGINT), template FROM tasks WHERE task_uuid = $1
