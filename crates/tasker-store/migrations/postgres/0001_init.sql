-- The step store (PostgreSQL). Ids are canonical UUID text; times are Unix milliseconds; JSON is text.
CREATE TABLE tasks (
    task_uuid      TEXT PRIMARY KEY NOT NULL,
    namespace      TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    template       TEXT NOT NULL,
    context        TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE workflow_steps (
    step_uuid       TEXT PRIMARY KEY NOT NULL,
    task_uuid       TEXT NOT NULL REFERENCES tasks (task_uuid),
    name            TEXT NOT NULL,
    template        TEXT NOT NULL,
    handler         TEXT NOT NULL,
    dependencies    TEXT NOT NULL,           -- JSON array of parent step names
    pending_parents BIGINT NOT NULL,        -- parents not yet complete; 0 <=> may be ready
    state           TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'claimed', 'complete', 'error')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    visible_at      BIGINT NOT NULL,        -- ready: not before; claimed: claim deadline
    claim_token     TEXT,
    claimed_at      BIGINT,
    results         TEXT,                    -- the StepExecutionResult JSON of the success
    last_error      TEXT,                    -- the StepExecutionResult JSON of the last failure
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (task_uuid, name)
);

CREATE INDEX workflow_steps_claimable ON workflow_steps (visible_at) WHERE state IN ('ready', 'claimed');
CREATE UNIQUE INDEX workflow_steps_claim_token ON workflow_steps (claim_token) WHERE claim_token IS NOT NULL;
CREATE INDEX workflow_steps_state ON workflow_steps (state);
