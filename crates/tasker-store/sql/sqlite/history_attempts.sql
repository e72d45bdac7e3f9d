-- A step's recorded attempts, oldest first: (attempt, claimed_at, ended_at, outcome, result). $1 step id.
SELECT attempt, claimed_at, ended_at, outcome, result FROM step_attempts WHERE step_id = $1 ORDER BY id
