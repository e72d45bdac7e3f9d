//! The tasker step store: tasks and their workflow steps in SQLite (embedded default) or PostgreSQL (many
//! worker processes share one queue), claimed in batches with a visibility timeout (at-least-once) and
//! completed in batches.
//!
//! The API is async (tokio); a synchronous `EventSource` of the worker core wraps it with its own
//! current-thread runtime.

#[macro_use]
mod store;
mod cancel;
mod change_probe;
mod claim;
mod claims;
mod complete;
mod connect;
mod create;
mod enqueue;
mod error;
mod event;
mod health;
mod history;
mod lite;
mod migrations;
pub mod registry;
mod sql;
mod status;
mod step_view;
mod stored_templates;
mod task_view;
pub mod templates;
#[cfg(feature = "test-support")]
pub mod test_support;
mod token;
mod verify;

pub use cancel::CancelOutcome;
pub use change_probe::ChangeProbe;
pub use connect::redact;
pub use create::NewTask;
pub use error::*;
pub use event::iso8601;
pub use health::StoreHealth;
pub use history::{AttemptOutcome, AttemptRecord, YieldOutcome};
pub use step_view::{StepState, StepView};
pub use store::{
    ClaimedStep, CompletionOutcome, HeldClaim, ReadyListener, Store, StoreOptions, StoreStatus, READY_CHANNEL,
};
pub use task_view::{TaskFilter, TaskPage, TaskStatus, TaskStepCounts, TaskView, MAX_PAGE};
pub use uuid::Uuid;
pub use verify::{Mismatch, VerifyReport, MAX_EXAMPLES};

/// The store used when neither an explicit URL nor a non-empty `TASKER_DATABASE_URL` names one: an SQLite
/// file in the working directory, created on first use (the embedded default).
pub const DEFAULT_DATABASE: &str = "tasker.db";
/// The environment variable naming the store when no URL is given explicitly.
pub const DATABASE_ENV: &str = "TASKER_DATABASE_URL";

/// The store URL to use: `explicit` (a CLI flag, the bootstrap config), else a non-empty
/// `TASKER_DATABASE_URL`, else [`DEFAULT_DATABASE`].
pub fn resolve_url(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var(DATABASE_ENV).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string())
}
