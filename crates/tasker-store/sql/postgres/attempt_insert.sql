-- Attempts of steps' histories that did not end in success. $1 step ids, $2 attempts, $3 claimed at, $4 ended
-- at, $5 outcomes (1 retry scheduled, 2 failed, 3 claim expired, 4 checkpoint yielded) (bigint[], pairwise),
-- $6 result JSON texts or NULLs (text[]).
INSERT INTO step_attempts (step_id, attempt, claimed_at, ended_at, outcome, result)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
