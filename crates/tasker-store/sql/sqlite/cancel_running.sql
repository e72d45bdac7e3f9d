-- A cancelled task's running steps finish but are not tried again: no attempts left (a retryable failure
-- goes to error; an expired claim is not claimed again). $1 first step id, $2 last step id.
UPDATE steps SET max_attempts = attempts WHERE id BETWEEN $1 AND $2 AND state = 2
