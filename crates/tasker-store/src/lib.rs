//! The tasker step store: tasks and their workflow steps in SQLite (embedded default) or PostgreSQL (many
//! worker processes share one queue), claimed in batches with a visibility timeout (at-least-once) and
//! completed in batches.
//!
//! The API is async (tokio); a synchronous `EventSource` of the worker core wraps it with its own
//! current-thread runtime.

mod error;
mod store;
pub mod templates;

pub use error::*;
pub use store::{
    redact, ClaimedStep, CompletionOutcome, ReadyListener, Store, StoreOptions, StoreStatus, READY_CHANNEL,
};
pub use uuid::Uuid;
