-- Claimable steps, oldest deadline first: ready and due, or claimed with an expired deadline and attempts left.
-- Locked, skipping rows another claimer holds. $1 now, $2 limit. Rows (id, state, attempts, claimed_at,
-- visible_at): an expired claim's history row needs the last three.
SELECT id, state::bigint, attempts::bigint, claimed_at, visible_at FROM steps
WHERE state IN (1, 2) AND visible_at <= $1 AND (state = 1 OR attempts < max_attempts)
ORDER BY visible_at LIMIT $2
FOR UPDATE SKIP LOCKED
