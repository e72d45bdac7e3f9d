-- A step of a task, by the task's and the step's UUIDs: (id, state, attempts, claimed_at, updated_at), or no row.
-- $1 task UUID, $2 step UUID. The task's steps are the contiguous ids from its first_step.
SELECT s.id, CAST(s.state AS BIGINT), CAST(s.attempts AS BIGINT), s.claimed_at, s.updated_at
FROM tasks t JOIN steps s ON s.id BETWEEN t.first_step AND t.first_step + t.step_count - 1
WHERE t.task_uuid = $1 AND s.step_uuid = $2
