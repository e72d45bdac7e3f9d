-- Schema 2: integer keys and narrow hot rows (see the SQLite migration of the same number for the tables).
-- A schema-1 claim cannot be completed any more (its token's format is gone): it is released without using
-- an attempt, claimable at once.

CREATE TABLE tasks_v2 (
    id             BIGINT PRIMARY KEY,
    task_uuid      TEXT NOT NULL UNIQUE,
    namespace      TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    template       TEXT NOT NULL,
    context        TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    first_step     BIGINT NOT NULL,
    step_count     INTEGER NOT NULL,
    created_at     BIGINT NOT NULL
);

INSERT INTO tasks_v2 (id, task_uuid, namespace, name, version, template, context, correlation_id, first_step,
                      step_count, created_at)
SELECT n, task_uuid, namespace, name, version, template, context, correlation_id,
       SUM(k) OVER (ORDER BY n) - k + 1, k, created_at
FROM (SELECT ROW_NUMBER() OVER (ORDER BY t.created_at, t.task_uuid) AS n, t.*,
             (SELECT COUNT(*) FROM workflow_steps w WHERE w.task_uuid = t.task_uuid) AS k
      FROM tasks t) numbered;

CREATE TABLE steps (
    id              BIGINT PRIMARY KEY,
    task_id         BIGINT NOT NULL,
    idx             INTEGER NOT NULL,
    state           SMALLINT NOT NULL,
    pending_parents INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    visible_at      BIGINT NOT NULL,
    claim_token     BIGINT,
    claimed_at      BIGINT,
    step_uuid       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
) WITH (fillfactor = 90);

INSERT INTO steps (id, task_id, idx, state, pending_parents, attempts, max_attempts, visible_at, claim_token,
                   claimed_at, step_uuid, created_at, updated_at)
SELECT t.first_step + i.idx, t.id, i.idx,
       CASE w.state WHEN 'pending' THEN 0 WHEN 'ready' THEN 1 WHEN 'claimed' THEN 1 WHEN 'complete' THEN 3 ELSE 4 END,
       w.pending_parents,
       CASE WHEN w.state = 'claimed' THEN GREATEST(w.attempts - 1, 0) ELSE w.attempts END,
       w.max_attempts,
       CASE WHEN w.state = 'claimed' THEN COALESCE(w.claimed_at, w.updated_at) ELSE w.visible_at END,
       NULL, NULL, w.step_uuid, w.created_at, w.updated_at
FROM workflow_steps w
JOIN tasks_v2 t ON t.task_uuid = w.task_uuid
JOIN (VALUES ('linear_step_1', 0), ('linear_step_2', 1), ('linear_step_3', 2), ('linear_step_4', 3),
             ('diamond_start', 0), ('diamond_branch_b', 1), ('diamond_branch_c', 2), ('diamond_end', 3))
     AS i(name, idx) ON i.name = w.name;

CREATE TABLE step_results (
    step_id BIGINT PRIMARY KEY,
    results TEXT NOT NULL
);
INSERT INTO step_results (step_id, results)
SELECT s.id, COALESCE(w.results, 'null') FROM steps s JOIN workflow_steps w ON w.step_uuid = s.step_uuid
WHERE w.state = 'complete';

CREATE TABLE step_errors (
    step_id    BIGINT PRIMARY KEY,
    last_error TEXT NOT NULL
);
INSERT INTO step_errors (step_id, last_error)
SELECT s.id, w.last_error FROM steps s JOIN workflow_steps w ON w.step_uuid = s.step_uuid
WHERE w.last_error IS NOT NULL;

CREATE TABLE step_counts (
    slot  SMALLINT NOT NULL,
    state SMALLINT NOT NULL,
    n     BIGINT NOT NULL,
    PRIMARY KEY (slot, state)
);
INSERT INTO step_counts (slot, state, n)
SELECT slot, st, 0 FROM generate_series(0, 15) AS slot CROSS JOIN generate_series(0, 4) AS st;
UPDATE step_counts c SET n = (SELECT COUNT(*) FROM steps s WHERE s.state = c.state) WHERE slot = 0;

DROP TABLE workflow_steps;
DROP TABLE tasks;
ALTER TABLE tasks_v2 RENAME TO tasks;
ALTER INDEX tasks_v2_pkey RENAME TO tasks_pkey;
ALTER INDEX tasks_v2_task_uuid_key RENAME TO tasks_task_uuid_key;

CREATE INDEX steps_claimable ON steps (visible_at) WHERE state IN (1, 2);
