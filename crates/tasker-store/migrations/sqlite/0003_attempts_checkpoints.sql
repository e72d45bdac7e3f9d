-- Schema 3: a step's attempt history and its checkpoint, kept off the hot path.
--
-- step_attempts:    one row per attempt that did not end in success: a failure (retry scheduled or final),
--                   a claim that expired (found when the step is claimed again or moved to error), a
--                   checkpoint yield. A success writes no row: its attempt is the step row itself (claimed_at,
--                   updated_at, attempts) with its result in step_results, so the common path costs nothing.
-- step_checkpoints: the last checkpoint a step yielded (cursor, items processed, accumulated results, as one
--                   JSON object); the step's next event carries it as workflow_step.checkpoint.
CREATE TABLE step_attempts (
    id         INTEGER PRIMARY KEY,
    step_id    INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    ended_at   INTEGER NOT NULL,
    -- 1 retry scheduled, 2 failed, 3 claim expired, 4 checkpoint yielded
    outcome    INTEGER NOT NULL,
    result     TEXT
);
CREATE INDEX step_attempts_step ON step_attempts (step_id);

CREATE TABLE step_checkpoints (
    step_id    INTEGER PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
