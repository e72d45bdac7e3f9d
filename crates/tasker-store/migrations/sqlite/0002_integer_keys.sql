-- Schema 2: integer keys and narrow hot rows.
--
-- tasks:        one row per task; its steps are the contiguous ids first_step .. first_step + step_count - 1,
--               in template order, so a step's parents and children are `id - idx + their idx`.
-- steps:        the hot row a claim and a completion touch: integer state (0 pending, 1 ready, 2 claimed,
--               3 complete, 4 error) and a 62-bit random claim token, which with the step id makes the event id.
-- step_results: a success's StepExecutionResult JSON, written once, read by the children's claims and verify.
-- step_errors:  the last failure's StepExecutionResult JSON.
-- step_counts:  steps per state, as deltas spread over 16 slots (a transaction adds to one random slot, so
--               concurrent writers on PostgreSQL rarely share a row); the counts are the sums over slots.
--
-- A schema-1 claim cannot be completed any more (its token's format is gone): it is released without using
-- an attempt, claimable at once.

CREATE TABLE tasks_v2 (
    id             INTEGER PRIMARY KEY,
    task_uuid      TEXT NOT NULL UNIQUE,
    namespace      TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    template       TEXT NOT NULL,
    context        TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    first_step     INTEGER NOT NULL,
    step_count     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

INSERT INTO tasks_v2 (id, task_uuid, namespace, name, version, template, context, correlation_id, first_step,
                      step_count, created_at)
SELECT n, task_uuid, namespace, name, version, template, context, correlation_id,
       SUM(k) OVER (ORDER BY n) - k + 1, k, created_at
FROM (SELECT ROW_NUMBER() OVER (ORDER BY t.created_at, t.task_uuid) AS n, t.*,
             (SELECT COUNT(*) FROM workflow_steps w WHERE w.task_uuid = t.task_uuid) AS k
      FROM tasks t);

CREATE TABLE steps (
    id              INTEGER PRIMARY KEY,
    task_id         INTEGER NOT NULL,
    idx             INTEGER NOT NULL,
    state           INTEGER NOT NULL,
    pending_parents INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    visible_at      INTEGER NOT NULL,
    claim_token     INTEGER,
    claimed_at      INTEGER,
    step_uuid       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

INSERT INTO steps (id, task_id, idx, state, pending_parents, attempts, max_attempts, visible_at, claim_token,
                   claimed_at, step_uuid, created_at, updated_at)
SELECT t.first_step + i.idx, t.id, i.idx,
       CASE w.state WHEN 'pending' THEN 0 WHEN 'ready' THEN 1 WHEN 'claimed' THEN 1 WHEN 'complete' THEN 3 ELSE 4 END,
       w.pending_parents,
       CASE WHEN w.state = 'claimed' THEN MAX(w.attempts - 1, 0) ELSE w.attempts END,
       w.max_attempts,
       CASE WHEN w.state = 'claimed' THEN COALESCE(w.claimed_at, w.updated_at) ELSE w.visible_at END,
       NULL, NULL, w.step_uuid, w.created_at, w.updated_at
FROM workflow_steps w
JOIN tasks_v2 t ON t.task_uuid = w.task_uuid
JOIN (SELECT column1 AS name, column2 AS idx FROM (VALUES
        ('linear_step_1', 0), ('linear_step_2', 1), ('linear_step_3', 2), ('linear_step_4', 3),
        ('diamond_start', 0), ('diamond_branch_b', 1), ('diamond_branch_c', 2), ('diamond_end', 3))) i
  ON i.name = w.name;

CREATE TABLE step_results (
    step_id INTEGER PRIMARY KEY,
    results TEXT NOT NULL
);
INSERT INTO step_results (step_id, results)
SELECT s.id, COALESCE(w.results, 'null') FROM steps s JOIN workflow_steps w ON w.step_uuid = s.step_uuid
WHERE w.state = 'complete';

CREATE TABLE step_errors (
    step_id    INTEGER PRIMARY KEY,
    last_error TEXT NOT NULL
);
INSERT INTO step_errors (step_id, last_error)
SELECT s.id, w.last_error FROM steps s JOIN workflow_steps w ON w.step_uuid = s.step_uuid
WHERE w.last_error IS NOT NULL;

CREATE TABLE step_counts (
    slot  INTEGER NOT NULL,
    state INTEGER NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (slot, state)
) WITHOUT ROWID;
INSERT INTO step_counts (slot, state, n)
SELECT slot.column1, st.column1, 0
FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14), (15)) slot
CROSS JOIN (VALUES (0), (1), (2), (3), (4)) st;
UPDATE step_counts SET n = (SELECT COUNT(*) FROM steps WHERE steps.state = step_counts.state) WHERE slot = 0;

DROP TABLE workflow_steps;
DROP TABLE tasks;
ALTER TABLE tasks_v2 RENAME TO tasks;

CREATE INDEX steps_claimable ON steps (visible_at) WHERE state IN (1, 2);
