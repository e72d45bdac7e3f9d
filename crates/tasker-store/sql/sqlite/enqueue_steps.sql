-- The steps of tasks $1..=$2: one per template step $4 [[index, parents, max attempts], ...], roots ready,
-- the rest pending. $3 now.
INSERT INTO steps (id, task_id, idx, state, pending_parents, attempts, max_attempts, visible_at, step_uuid,
                   created_at, updated_at)
SELECT t.first_step + json_extract(s.value, '$[0]'), t.id, json_extract(s.value, '$[0]'),
       CASE WHEN json_extract(s.value, '$[1]') = 0 THEN 1 ELSE 0 END, json_extract(s.value, '$[1]'), 0,
       json_extract(s.value, '$[2]'), $3,
       lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2)
         || '-' || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-'
         || lower(hex(randomblob(6))),
       $3, $3
FROM tasks t, json_each($4) s
WHERE t.id BETWEEN $1 AND $2
ORDER BY t.id, json_extract(s.value, '$[0]')
