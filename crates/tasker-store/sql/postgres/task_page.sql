-- A page of tasks in creation (id) order with their steps counted by state and the status derived from them,
-- and how many tasks match. $1 namespace or NULL, $2 status or NULL, $3 lowest task id, $4 highest task id,
-- $5 limit, $6 offset. Rows (total, id, task_uuid, namespace, name, version, template, context,
-- correlation_id, priority, created_at, step_count, initiator, source_system, reason, tags,
-- parent_correlation_id, idempotency_key, cancelled_at, pending, ready, in_progress, complete, error,
-- cancelled, status); an empty page is one row holding only total.
-- A task's status: complete (every step complete), cancelled (cancel_task was called), error (a step is in
-- error), in_progress (a step was claimed at least once), else pending.
WITH v AS (
    SELECT t.id, t.task_uuid, t.namespace, t.name, t.version, t.template, t.context, t.correlation_id,
           CAST(t.priority AS BIGINT) AS priority, t.created_at, CAST(t.step_count AS BIGINT) AS step_count,
           r.initiator, r.source_system, r.reason, r.tags, r.parent_correlation_id, r.idempotency_key,
           r.cancelled_at,
           SUM(CASE WHEN s.state = 0 THEN 1 ELSE 0 END) AS pending,
           SUM(CASE WHEN s.state = 1 THEN 1 ELSE 0 END) AS ready,
           SUM(CASE WHEN s.state = 2 THEN 1 ELSE 0 END) AS in_progress,
           SUM(CASE WHEN s.state = 3 THEN 1 ELSE 0 END) AS complete,
           SUM(CASE WHEN s.state = 4 THEN 1 ELSE 0 END) AS error,
           SUM(CASE WHEN s.state = 5 THEN 1 ELSE 0 END) AS cancelled,
           CASE WHEN SUM(CASE WHEN s.state = 3 THEN 1 ELSE 0 END) = t.step_count THEN 'complete'
                WHEN r.cancelled_at IS NOT NULL THEN 'cancelled'
                WHEN SUM(CASE WHEN s.state = 4 THEN 1 ELSE 0 END) > 0 THEN 'error'
                WHEN SUM(CASE WHEN s.state IN (2, 3) OR s.attempts > 0 THEN 1 ELSE 0 END) > 0 THEN 'in_progress'
                ELSE 'pending' END AS status
    FROM tasks t
    JOIN steps s ON s.id BETWEEN t.first_step AND t.first_step + t.step_count - 1
    LEFT JOIN task_requests r ON r.task_id = t.id
    WHERE ($1 IS NULL OR t.namespace = $1) AND t.id BETWEEN $3 AND $4
    GROUP BY t.id, r.task_id
), matching AS (
    SELECT * FROM v WHERE $2 IS NULL OR status = $2
)
SELECT c.total, p.* FROM (SELECT COUNT(*) AS total FROM matching) c
LEFT JOIN (SELECT * FROM matching ORDER BY id LIMIT $5 OFFSET $6) p ON 1 = 1
ORDER BY p.id
