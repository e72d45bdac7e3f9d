-- The task created with an idempotency key: (task uuid), or no row. $1 key.
SELECT t.task_uuid FROM task_requests r JOIN tasks t ON t.id = r.task_id WHERE r.idempotency_key = $1
