-- Expired claims with no attempts left (at most 1000, locked), as one JSON array of ids. $1 now.
SELECT COALESCE(json_agg(id), '[]')::text FROM (
    SELECT id FROM steps WHERE state = 2 AND visible_at <= $1 AND attempts >= max_attempts
    LIMIT 1000 FOR UPDATE SKIP LOCKED) expired
