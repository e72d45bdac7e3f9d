-- Expired claims with no attempts left (at most 1000): rows (id, attempts, claimed_at, visible_at). ?1 now.
-- `state IN (1, 2)` lets the partial index serve the range scan of deadlines.
SELECT id, attempts, claimed_at, visible_at FROM steps INDEXED BY steps_claimable
WHERE state IN (1, 2) AND state = 2 AND visible_at <= ?1 AND attempts >= max_attempts LIMIT 1000
