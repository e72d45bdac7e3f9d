//! Whole statements per backend (`sql/sqlite/*.sql`, `sql/postgres/*.sql`), embedded at build time.

use crate::store::Kind;

/// The statements of one backend (each file says what it does and binds).
#[derive(Debug)]
pub(crate) struct Statements {
    pub children_pending: &'static str,
    pub children_update: &'static str,
    pub claim_mark: &'static str,
    pub claim_pick: &'static str,
    pub claimed_rows: &'static str,
    pub complete_success: &'static str,
    pub counts: &'static str,
    pub counts_add: &'static str,
    pub enqueue_lock: &'static str,
    pub enqueue_next_ids: &'static str,
    pub enqueue_steps: &'static str,
    pub enqueue_tasks: &'static str,
    pub error_upsert: &'static str,
    pub errors_mark_many: &'static str,
    pub errors_upsert_many: &'static str,
    pub expire_pick: &'static str,
    pub extend: &'static str,
    pub fail_retry: &'static str,
    pub failure_held: &'static str,
    pub held_claims: &'static str,
    pub mark_error: &'static str,
    pub release: &'static str,
    pub results_by_id: &'static str,
    pub results_insert: &'static str,
    pub retry_errors: &'static str,
    pub success_held: &'static str,
    pub tasks_by_id: &'static str,
    pub verify_page: &'static str,
}

/// `sql/sqlite`.
pub(crate) static SQLITE: Statements = Statements {
    children_pending: include_str!("../sql/sqlite/children_pending.sql"),
    children_update: include_str!("../sql/sqlite/children_update.sql"),
    claim_mark: include_str!("../sql/sqlite/claim_mark.sql"),
    claim_pick: include_str!("../sql/sqlite/claim_pick.sql"),
    claimed_rows: include_str!("../sql/sqlite/claimed_rows.sql"),
    complete_success: include_str!("../sql/sqlite/complete_success.sql"),
    counts: include_str!("../sql/sqlite/counts.sql"),
    counts_add: include_str!("../sql/sqlite/counts_add.sql"),
    enqueue_lock: include_str!("../sql/sqlite/enqueue_lock.sql"),
    enqueue_next_ids: include_str!("../sql/sqlite/enqueue_next_ids.sql"),
    enqueue_steps: include_str!("../sql/sqlite/enqueue_steps.sql"),
    enqueue_tasks: include_str!("../sql/sqlite/enqueue_tasks.sql"),
    error_upsert: include_str!("../sql/sqlite/error_upsert.sql"),
    errors_mark_many: include_str!("../sql/sqlite/errors_mark_many.sql"),
    errors_upsert_many: include_str!("../sql/sqlite/errors_upsert_many.sql"),
    expire_pick: include_str!("../sql/sqlite/expire_pick.sql"),
    extend: include_str!("../sql/sqlite/extend.sql"),
    fail_retry: include_str!("../sql/sqlite/fail_retry.sql"),
    failure_held: include_str!("../sql/sqlite/failure_held.sql"),
    held_claims: include_str!("../sql/sqlite/held_claims.sql"),
    mark_error: include_str!("../sql/sqlite/mark_error.sql"),
    release: include_str!("../sql/sqlite/release.sql"),
    results_by_id: include_str!("../sql/sqlite/results_by_id.sql"),
    results_insert: include_str!("../sql/sqlite/results_insert.sql"),
    retry_errors: include_str!("../sql/sqlite/retry_errors.sql"),
    success_held: include_str!("../sql/sqlite/success_held.sql"),
    tasks_by_id: include_str!("../sql/sqlite/tasks_by_id.sql"),
    verify_page: include_str!("../sql/sqlite/verify_page.sql"),
};

/// `sql/postgres`.
pub(crate) static POSTGRES: Statements = Statements {
    children_pending: include_str!("../sql/postgres/children_pending.sql"),
    children_update: include_str!("../sql/postgres/children_update.sql"),
    claim_mark: include_str!("../sql/postgres/claim_mark.sql"),
    claim_pick: include_str!("../sql/postgres/claim_pick.sql"),
    claimed_rows: include_str!("../sql/postgres/claimed_rows.sql"),
    complete_success: include_str!("../sql/postgres/complete_success.sql"),
    counts: include_str!("../sql/postgres/counts.sql"),
    counts_add: include_str!("../sql/postgres/counts_add.sql"),
    enqueue_lock: include_str!("../sql/postgres/enqueue_lock.sql"),
    enqueue_next_ids: include_str!("../sql/postgres/enqueue_next_ids.sql"),
    enqueue_steps: include_str!("../sql/postgres/enqueue_steps.sql"),
    enqueue_tasks: include_str!("../sql/postgres/enqueue_tasks.sql"),
    error_upsert: include_str!("../sql/postgres/error_upsert.sql"),
    errors_mark_many: include_str!("../sql/postgres/errors_mark_many.sql"),
    errors_upsert_many: include_str!("../sql/postgres/errors_upsert_many.sql"),
    expire_pick: include_str!("../sql/postgres/expire_pick.sql"),
    extend: include_str!("../sql/postgres/extend.sql"),
    fail_retry: include_str!("../sql/postgres/fail_retry.sql"),
    failure_held: include_str!("../sql/postgres/failure_held.sql"),
    held_claims: include_str!("../sql/postgres/held_claims.sql"),
    mark_error: include_str!("../sql/postgres/mark_error.sql"),
    release: include_str!("../sql/postgres/release.sql"),
    results_by_id: include_str!("../sql/postgres/results_by_id.sql"),
    results_insert: include_str!("../sql/postgres/results_insert.sql"),
    retry_errors: include_str!("../sql/postgres/retry_errors.sql"),
    success_held: include_str!("../sql/postgres/success_held.sql"),
    tasks_by_id: include_str!("../sql/postgres/tasks_by_id.sql"),
    verify_page: include_str!("../sql/postgres/verify_page.sql"),
};

/// The statements of `kind`.
pub(crate) fn of(kind: Kind) -> &'static Statements {
    match kind {
        Kind::Sqlite => &SQLITE,
        Kind::Postgres => &POSTGRES,
    }
}
