-- Marks a task cancelled (the first cancellation's time stays). $1 task id, $2 now.
INSERT INTO task_requests (task_id, cancelled_at) VALUES ($1, $2)
ON CONFLICT (task_id) DO UPDATE SET cancelled_at = COALESCE(task_requests.cancelled_at, excluded.cancelled_at)
