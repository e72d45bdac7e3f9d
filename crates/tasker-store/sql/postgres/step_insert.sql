-- One step of a task created by a client: ready when it has no parents, else pending. $1 id, $2 task id,
-- $3 index in the template, $4 state, $5 parents, $6 max attempts, $7 now, $8 step uuid.
INSERT INTO steps (id, task_id, idx, state, pending_parents, attempts, max_attempts, visible_at, step_uuid,
                   created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $7, $7)
