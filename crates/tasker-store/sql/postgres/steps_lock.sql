-- Locks a task's steps in id order (a cancellation waits for claims and completions holding them, which then
-- see the new states). $1 first step id, $2 last step id.
SELECT id FROM steps WHERE id BETWEEN $1 AND $2 ORDER BY id FOR UPDATE
