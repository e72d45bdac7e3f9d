//! Whole statements per backend (`sql/sqlite/*.sql`, `sql/postgres/*.sql`), embedded at build time.
//!
//! [`Statements`] are run through sqlx on both backends (enqueue, status, verify). The hot path (claim,
//! complete, extend, release) has one set per backend: [`pg`], set-based statements taking a batch as arrays
//! parameters (`bigint[]`, `text[]`; one round trip each, through sqlx); [`lite`], per-row statements that SQLite's own connection
//! thread (`crate::lite`) runs prepared and cached, with no JSON in between.

use crate::store::Kind;

/// The statements both backends run through sqlx (each file says what it does and binds).
#[derive(Debug)]
pub(crate) struct Statements {
    pub counts: &'static str,
    pub counts_add: &'static str,
    pub enqueue_lock: &'static str,
    pub enqueue_next_ids: &'static str,
    pub held_claims: &'static str,
    pub history_attempts: &'static str,
    pub history_result: &'static str,
    pub history_step: &'static str,
    pub retry_errors: &'static str,
    pub verify_page: &'static str,
    // The client calls (create, get, list, cancel, steps, health).
    pub cancel_running: &'static str,
    pub cancel_steps: &'static str,
    pub request_by_key: &'static str,
    pub request_cancel: &'static str,
    pub request_insert: &'static str,
    pub schema_version: &'static str,
    pub step_insert: &'static str,
    pub steps_complete: &'static str,
    pub task_by_uuid: &'static str,
    pub task_insert: &'static str,
    pub task_page: &'static str,
    pub task_steps: &'static str,
    pub template_definition: &'static str,
    pub template_insert: &'static str,
    /// Locks a task's steps before a cancellation (PostgreSQL; SQLite's `BEGIN IMMEDIATE` holds the write
    /// lock already).
    pub steps_lock: Option<&'static str>,
}

/// `sql/sqlite`.
pub(crate) static SQLITE: Statements = Statements {
    counts: include_str!("../sql/sqlite/counts.sql"),
    counts_add: include_str!("../sql/sqlite/counts_add.sql"),
    enqueue_lock: include_str!("../sql/sqlite/enqueue_lock.sql"),
    enqueue_next_ids: include_str!("../sql/sqlite/enqueue_next_ids.sql"),
    held_claims: include_str!("../sql/sqlite/held_claims.sql"),
    history_attempts: include_str!("../sql/sqlite/history_attempts.sql"),
    history_result: include_str!("../sql/sqlite/history_result.sql"),
    history_step: include_str!("../sql/sqlite/history_step.sql"),
    retry_errors: include_str!("../sql/sqlite/retry_errors.sql"),
    verify_page: include_str!("../sql/sqlite/verify_page.sql"),
    cancel_running: include_str!("../sql/sqlite/cancel_running.sql"),
    cancel_steps: include_str!("../sql/sqlite/cancel_steps.sql"),
    request_by_key: include_str!("../sql/sqlite/request_by_key.sql"),
    request_cancel: include_str!("../sql/sqlite/request_cancel.sql"),
    request_insert: include_str!("../sql/sqlite/request_insert.sql"),
    schema_version: include_str!("../sql/sqlite/schema_version.sql"),
    step_insert: include_str!("../sql/sqlite/step_insert.sql"),
    steps_complete: include_str!("../sql/sqlite/steps_complete.sql"),
    task_by_uuid: include_str!("../sql/sqlite/task_by_uuid.sql"),
    task_insert: include_str!("../sql/sqlite/task_insert.sql"),
    task_page: include_str!("../sql/sqlite/task_page.sql"),
    task_steps: include_str!("../sql/sqlite/task_steps.sql"),
    template_definition: include_str!("../sql/sqlite/template_definition.sql"),
    template_insert: include_str!("../sql/sqlite/template_insert.sql"),
    steps_lock: None,
};

/// `sql/postgres`.
pub(crate) static POSTGRES: Statements = Statements {
    counts: include_str!("../sql/postgres/counts.sql"),
    counts_add: include_str!("../sql/postgres/counts_add.sql"),
    enqueue_lock: include_str!("../sql/postgres/enqueue_lock.sql"),
    enqueue_next_ids: include_str!("../sql/postgres/enqueue_next_ids.sql"),
    held_claims: include_str!("../sql/postgres/held_claims.sql"),
    history_attempts: include_str!("../sql/postgres/history_attempts.sql"),
    history_result: include_str!("../sql/postgres/history_result.sql"),
    history_step: include_str!("../sql/postgres/history_step.sql"),
    retry_errors: include_str!("../sql/postgres/retry_errors.sql"),
    verify_page: include_str!("../sql/postgres/verify_page.sql"),
    cancel_running: include_str!("../sql/postgres/cancel_running.sql"),
    cancel_steps: include_str!("../sql/postgres/cancel_steps.sql"),
    request_by_key: include_str!("../sql/postgres/request_by_key.sql"),
    request_cancel: include_str!("../sql/postgres/request_cancel.sql"),
    request_insert: include_str!("../sql/postgres/request_insert.sql"),
    schema_version: include_str!("../sql/postgres/schema_version.sql"),
    step_insert: include_str!("../sql/postgres/step_insert.sql"),
    steps_complete: include_str!("../sql/postgres/steps_complete.sql"),
    task_by_uuid: include_str!("../sql/postgres/task_by_uuid.sql"),
    task_insert: include_str!("../sql/postgres/task_insert.sql"),
    task_page: include_str!("../sql/postgres/task_page.sql"),
    task_steps: include_str!("../sql/postgres/task_steps.sql"),
    template_definition: include_str!("../sql/postgres/template_definition.sql"),
    template_insert: include_str!("../sql/postgres/template_insert.sql"),
    steps_lock: Some(include_str!("../sql/postgres/steps_lock.sql")),
};

/// The statements of `kind`.
pub(crate) fn of(kind: Kind) -> &'static Statements {
    match kind {
        Kind::Sqlite => &SQLITE,
        Kind::Postgres => &POSTGRES,
    }
}

/// PostgreSQL's hot path (`sql/postgres`): a batch per statement, bound as one JSON parameter.
pub(crate) mod pg {
    pub const ATTEMPT_INSERT: &str = include_str!("../sql/postgres/attempt_insert.sql");
    pub const CHECKPOINT_HELD: &str = include_str!("../sql/postgres/checkpoint_held.sql");
    pub const CHECKPOINT_UPSERT: &str = include_str!("../sql/postgres/checkpoint_upsert.sql");
    pub const CHECKPOINTS_BY_ID: &str = include_str!("../sql/postgres/checkpoints_by_id.sql");
    pub const CHILDREN_PENDING: &str = include_str!("../sql/postgres/children_pending.sql");
    pub const CHILDREN_UPDATE: &str = include_str!("../sql/postgres/children_update.sql");
    pub const CLAIM_MARK: &str = include_str!("../sql/postgres/claim_mark.sql");
    pub const CLAIM_PICK: &str = include_str!("../sql/postgres/claim_pick.sql");
    pub const COMPLETE_SUCCESS: &str = include_str!("../sql/postgres/complete_success.sql");
    pub const ERROR_UPSERT: &str = include_str!("../sql/postgres/error_upsert.sql");
    pub const ERRORS_MARK_MANY: &str = include_str!("../sql/postgres/errors_mark_many.sql");
    pub const ERRORS_UPSERT_MANY: &str = include_str!("../sql/postgres/errors_upsert_many.sql");
    pub const EXPIRE_PICK: &str = include_str!("../sql/postgres/expire_pick.sql");
    pub const EXTEND: &str = include_str!("../sql/postgres/extend.sql");
    pub const FAIL_RETRY: &str = include_str!("../sql/postgres/fail_retry.sql");
    pub const FAILURE_HELD: &str = include_str!("../sql/postgres/failure_held.sql");
    pub const MARK_ERROR: &str = include_str!("../sql/postgres/mark_error.sql");
    pub const RELEASE: &str = include_str!("../sql/postgres/release.sql");
    pub const RESULTS_BY_ID: &str = include_str!("../sql/postgres/results_by_id.sql");
    pub const RESULTS_INSERT: &str = include_str!("../sql/postgres/results_insert.sql");
    pub const STEPS_INCOMPLETE: &str = include_str!("../sql/postgres/steps_incomplete.sql");
    pub const SUCCESS_HELD: &str = include_str!("../sql/postgres/success_held.sql");
    pub const TASKS_BY_ID: &str = include_str!("../sql/postgres/tasks_by_id.sql");
    pub const TASKS_LOCK: &str = include_str!("../sql/postgres/tasks_lock.sql");
}

/// SQLite's hot path (`sql/sqlite`): one row per execution, `?N` parameters, prepared once per connection.
pub(crate) mod lite {
    pub const ATTEMPT_INSERT: &str = include_str!("../sql/sqlite/attempt_insert.sql");
    pub const CHECKPOINT_HELD: &str = include_str!("../sql/sqlite/checkpoint_held.sql");
    pub const CHECKPOINTS_OF: &str = include_str!("../sql/sqlite/checkpoints_of.sql");
    pub const CHECKPOINT_UPSERT: &str = include_str!("../sql/sqlite/checkpoint_upsert.sql");
    pub const CHILDREN_PENDING: &str = include_str!("../sql/sqlite/children_pending.sql");
    pub const CHILDREN_UPDATE: &str = include_str!("../sql/sqlite/children_update.sql");
    pub const CLAIM_MARK: &str = include_str!("../sql/sqlite/claim_mark.sql");
    pub const CLAIM_PICK: &str = include_str!("../sql/sqlite/claim_pick.sql");
    pub const COMPLETE_SUCCESS: &str = include_str!("../sql/sqlite/complete_success.sql");
    pub const CORRUPT_MARK: &str = include_str!("../sql/sqlite/corrupt_mark.sql");
    pub const ERROR_UPSERT: &str = include_str!("../sql/sqlite/error_upsert.sql");
    pub const EXPIRE_PICK: &str = include_str!("../sql/sqlite/expire_pick.sql");
    pub const EXTEND: &str = include_str!("../sql/sqlite/extend.sql");
    pub const FAIL_RETRY: &str = include_str!("../sql/sqlite/fail_retry.sql");
    pub const FAILURE_HELD: &str = include_str!("../sql/sqlite/failure_held.sql");
    pub const MARK_ERROR: &str = include_str!("../sql/sqlite/mark_error.sql");
    pub const RELEASE: &str = include_str!("../sql/sqlite/release.sql");
    pub const RESULTS_BY_ID: &str = include_str!("../sql/sqlite/results_by_id.sql");
    pub const RESULTS_INSERT: &str = include_str!("../sql/sqlite/results_insert.sql");
    pub const STEP_STATE: &str = include_str!("../sql/sqlite/step_state.sql");
    pub const SUCCESS_HELD: &str = include_str!("../sql/sqlite/success_held.sql");
    pub const TASKS_BY_ID: &str = include_str!("../sql/sqlite/tasks_by_id.sql");
    /// Enqueue's inserts (run through sqlx; PostgreSQL streams its rows with COPY instead).
    pub const ENQUEUE_STEPS: &str = include_str!("../sql/sqlite/enqueue_steps.sql");
    pub const ENQUEUE_TASKS: &str = include_str!("../sql/sqlite/enqueue_tasks.sql");
}
