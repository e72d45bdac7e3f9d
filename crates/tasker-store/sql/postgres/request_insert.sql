-- What a client's request carried besides the task. $1 task id, $2 initiator, $3 source system, $4 reason,
-- $5 tags (JSON array), $6 parent correlation id, $7 idempotency key (unique; NULL for none).
INSERT INTO task_requests (task_id, initiator, source_system, reason, tags, parent_correlation_id, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7)
