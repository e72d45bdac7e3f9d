-- The steps of tasks $1..=$2: one per template step $5 [[index, parents], ...], roots ready, the rest
-- pending. $3 max attempts, $4 now.
INSERT INTO steps (id, task_id, idx, state, pending_parents, attempts, max_attempts, visible_at, step_uuid,
                   created_at, updated_at)
SELECT t.first_step + (s->>0)::bigint, t.id, (s->>0)::int,
       CASE WHEN (s->>1)::int = 0 THEN 1 ELSE 0 END, (s->>1)::int, 0, $3::int, $4, gen_random_uuid()::text, $4, $4
FROM tasks t CROSS JOIN json_array_elements($5::json) s
WHERE t.id BETWEEN $1 AND $2
ORDER BY t.id, (s->>0)::int
