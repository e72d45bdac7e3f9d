-- Claimable steps, oldest deadline first: ready and due, or claimed with an expired deadline and attempts left.
-- ?1 now, ?2 limit. Rows (id, state, task_id, idx, attempts, step_uuid, created_at, claimed_at, visible_at):
-- what the claim, the event and an expired claim's history row need, read while the row is at hand.
SELECT id, state, task_id, idx, attempts, step_uuid, created_at, claimed_at, visible_at FROM steps INDEXED BY steps_claimable
WHERE state IN (1, 2) AND visible_at <= ?1 AND (state = 1 OR attempts < max_attempts)
ORDER BY visible_at LIMIT ?2
