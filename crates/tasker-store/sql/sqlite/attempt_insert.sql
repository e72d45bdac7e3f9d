-- One attempt of a step's history that did not end in success. ?1 step id, ?2 attempt, ?3 claimed at, ?4 ended
-- at, ?5 outcome (1 retry scheduled, 2 failed, 3 claim expired, 4 checkpoint yielded), ?6 result JSON or NULL.
INSERT INTO step_attempts (step_id, attempt, claimed_at, ended_at, outcome, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
