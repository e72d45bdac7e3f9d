-- Schema 4: what a client's task request carries besides the task itself, and cancellation (see the SQLite
-- migration of the same number for the table and the new step state 5, cancelled).
CREATE TABLE task_requests (
    task_id               BIGINT PRIMARY KEY,
    initiator             TEXT,
    source_system         TEXT,
    reason                TEXT,
    tags                  TEXT,
    parent_correlation_id TEXT,
    idempotency_key       TEXT,
    cancelled_at          BIGINT
);
CREATE UNIQUE INDEX task_requests_idempotency_key ON task_requests (idempotency_key);

INSERT INTO step_counts (slot, state, n)
SELECT slot, 5, 0 FROM generate_series(0, 15) AS slot;

-- task_templates: the canonical definition (JSON) of each registered template a task was created from, by
-- its key (`namespace/name@version`, what `tasks.template` holds), so a process that claims such a task
-- without having registered the template itself can register it from here.
CREATE TABLE task_templates (
    template   TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
