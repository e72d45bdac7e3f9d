-- Schema 4: what a client's task request carries besides the task itself, and cancellation.
--
-- task_requests: one row per task created by `create_task` (tasks enqueued in bulk have none until they are
--                cancelled): who asked and why, its tags (a JSON array), the parent correlation id, the
--                idempotency key (unique: a repeated request finds the first task) and when the task was
--                cancelled. Kept off the `tasks` row, which the claim path reads.
-- step state 5:  cancelled (a pending or ready step of a cancelled task; never claimable, never made ready),
--                with its row in the step counts of every slot.
CREATE TABLE task_requests (
    task_id               INTEGER PRIMARY KEY,
    initiator             TEXT,
    source_system         TEXT,
    reason                TEXT,
    tags                  TEXT,
    parent_correlation_id TEXT,
    idempotency_key       TEXT,
    cancelled_at          INTEGER
);
CREATE UNIQUE INDEX task_requests_idempotency_key ON task_requests (idempotency_key);

INSERT INTO step_counts (slot, state, n)
SELECT slot.column1, 5, 0
FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14), (15)) slot;

-- task_templates: the canonical definition (JSON) of each registered template a task was created from, by
-- its key (`namespace/name@version`, what `tasks.template` holds), so a process that claims such a task
-- without having registered the template itself can register it from here.
CREATE TABLE task_templates (
    template   TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
