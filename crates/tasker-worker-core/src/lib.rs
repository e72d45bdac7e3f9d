//! The Rust worker core behind `libtasker_worker`: claims tasker step events from a source, dispatches them
//! to TypeScript handlers over a tasker-ring region (or, as the measured baseline, one per FFI poll), tracks
//! what is in flight with tasker-core's semantics, and hands every result back to the source.

pub mod config;
pub mod dispatch;
pub mod domain_events;
pub mod doorbell;
pub mod event_id;
pub mod refusals;
pub mod result;
pub mod source;
pub mod store_source;
pub mod synthetic;
pub mod wake_legs;
mod wal_watch;
pub mod wall_anchor;
pub mod worker;

pub use config::{ConfigSection, SourceConfig, Transport, WorkerConfig, WorkerConfigError};
pub use dispatch::{DispatchMetrics, Refusal};
pub use domain_events::{DomainEventBatch, DomainEventLog};
pub use event_id::Uuid;
pub use refusals::{CompletionRefusal, RefusalBatch, RefusalKind};
pub use result::StepResult;
pub use source::{EventPayload, EventSource, SourcedEvent, SyntheticSource, SyntheticStats};
pub use store_source::{StoreMetrics, StoreSource, StoreSourceError, StoreSourceSettings};
pub use worker::{BootstrapError, Phase, Worker, WorkerFault, WorkerStatus};
