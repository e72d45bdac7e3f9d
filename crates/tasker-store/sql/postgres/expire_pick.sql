-- Expired claims with no attempts left (at most 1000, locked): ids. $1 now.
SELECT id FROM steps WHERE state = 2 AND visible_at <= $1 AND attempts >= max_attempts
LIMIT 1000 FOR UPDATE SKIP LOCKED
