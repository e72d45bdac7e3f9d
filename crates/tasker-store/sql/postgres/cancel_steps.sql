-- A cancelled task's steps in state $4 (pending or ready) become cancelled: never claimable, never made ready.
-- $1 first step id, $2 last step id, $3 now.
UPDATE steps SET state = 5, updated_at = $3 WHERE id BETWEEN $1 AND $2 AND state = $4
