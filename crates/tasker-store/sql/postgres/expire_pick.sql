-- Expired claims with no attempts left (at most 1000, locked): rows (id, attempts, claimed_at, visible_at).
-- $1 now.
SELECT id, attempts::bigint, claimed_at, visible_at FROM steps
WHERE state = 2 AND visible_at <= $1 AND attempts >= max_attempts
LIMIT 1000 FOR UPDATE SKIP LOCKED
