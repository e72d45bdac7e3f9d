//! One error enum per operation.

pub use crate::lite::LiteError;
use std::time::Duration;

/// [`crate::Store::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not `sqlite:...`, `postgres://...`, `postgresql://...` or a bare file path, or it is malformed.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made before the connect timeout (server down, wrong port, unwritable file).
    #[error("store `{url}` unreachable after {attempts} attempts in {elapsed:?}: {source}")]
    Unreachable {
        /// The URL, password redacted.
        url: String,
        /// Connection attempts made.
        attempts: u32,
        /// Time spent trying.
        elapsed: Duration,
        /// The last attempt's error.
        #[source]
        source: sqlx::Error,
    },
    /// The server answered but refused us (authentication, missing database); not retried.
    #[error("store `{url}` refused the connection: {source}")]
    Rejected {
        /// The URL, password redacted.
        url: String,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations failed.
    #[error("store migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// SQLite's hot-path connection (claims and completions) could not be opened.
    #[error("store `{url}`: opening the claim and completion connection failed: {source}")]
    Open {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: LiteError,
    },
}

/// [`crate::Store::enqueue`] failed; no task of the failing batch was inserted (earlier batches were).
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// No template of that name (`linear`, `diamond`).
    #[error("unknown template `{0}` (known: linear, diamond)")]
    UnknownTemplate(String),
    /// The context bytes are not a JSON object.
    #[error("task context is not a JSON object: {0}")]
    InvalidContext(String),
    /// The store holds as many steps as event ids can name (2^48 - 1).
    #[error("the store is full: step ids would pass {0}")]
    Full(i64),
    /// The database failed.
    #[error("enqueue: {0}")]
    Database(#[from] sqlx::Error),
}

/// [`crate::Store::claim`] failed; nothing was claimed (the transaction rolled back).
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// SQLite's claim and completion connection failed (or the store was closed).
    #[error("{0}")]
    Embedded(#[from] LiteError),
    /// The database failed.
    #[error("claim: {0}")]
    Database(#[from] sqlx::Error),
    /// A row does not hold what the store wrote (bad UUID, JSON, unknown template).
    #[error("claim: corrupt row: {0}")]
    CorruptRow(String),
}

/// [`crate::Store::complete_batch`] failed; no completion of the batch was persisted.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    /// SQLite's claim and completion connection failed (or the store was closed).
    #[error("{0}")]
    Embedded(#[from] LiteError),
    /// The database failed.
    #[error("complete: {0}")]
    Database(#[from] sqlx::Error),
    /// A row does not hold what the store wrote.
    #[error("complete: corrupt row: {0}")]
    CorruptRow(String),
}

/// [`crate::Store::extend`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    /// SQLite's claim and completion connection failed (or the store was closed).
    #[error("{0}")]
    Embedded(#[from] LiteError),
    /// The database failed.
    #[error("extend: {0}")]
    Database(#[from] sqlx::Error),
}

/// [`crate::Store::release`] failed; the claims of the failing chunk are unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// SQLite's claim and completion connection failed (or the store was closed).
    #[error("{0}")]
    Embedded(#[from] LiteError),
    /// The database failed.
    #[error("release: {0}")]
    Database(#[from] sqlx::Error),
}

/// [`crate::Store::retry_errors`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The database failed.
    #[error("retry_errors: {0}")]
    Database(#[from] sqlx::Error),
}

/// [`crate::Store::status`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The database failed.
    #[error("status: {0}")]
    Database(#[from] sqlx::Error),
}

/// [`crate::Store::verify`] failed; no report (a task that does not match is a mismatch, not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The database failed.
    #[error("verify: {0}")]
    Database(#[from] sqlx::Error),
    /// A row does not hold what the store wrote (bad task UUID, unknown template).
    #[error("verify: corrupt row: {0}")]
    CorruptRow(String),
}

/// [`crate::Store::listen`] or [`crate::ReadyListener::recv`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// SQLite has no notifications: poll instead.
    #[error("listen: SQLite stores have no notifications; poll claim() instead")]
    Unsupported,
    /// The database failed.
    #[error("listen: {0}")]
    Database(#[from] sqlx::Error),
}

/// SQLite's errors on the embedded hot path become each operation's `Embedded` variant.
macro_rules! embedded_from_sqlite {
    ($($op:ty),*) => {$(
        impl From<rusqlite::Error> for $op {
            fn from(e: rusqlite::Error) -> Self {
                Self::Embedded(LiteError::Sqlite(e))
            }
        }
    )*};
}
embedded_from_sqlite!(ClaimError, CompleteError, ExtendError, ReleaseError);

/// Whether a database error is an outage (the server or file unreachable, busy, shutting down, a lost
/// connection, a serialization conflict): the same call may succeed later. Anything else (a constraint, a
/// malformed statement, a refused login) is not.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN (primary code: the low byte).
                return matches!(code.parse::<i32>().map(|c| c & 0xff), Ok(5 | 6 | 10 | 14));
            }
            // PostgreSQL: connection exceptions (class 08), operator intervention (57P01-57P03), too many
            // connections, serialization failures and deadlocks.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01")
        }
        _ => false,
    }
}

/// [`crate::Store::create_task`] failed; no task was created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    /// No template of that name, namespace and version.
    #[error("unknown template `{name}` version `{version}` in namespace `{namespace}` (known: {})", known.join(", "))]
    UnknownTemplate {
        /// Name asked for.
        name: String,
        /// Namespace asked for.
        namespace: String,
        /// Version asked for.
        version: String,
        /// The templates a task can be created from (`name version`, with the namespace of a registered one).
        known: Vec<String>,
    },
    /// A field of the request is unusable (a context that is not an object, an empty initiator, ...).
    #[error("invalid task request: {0}")]
    InvalidRequest(String),
    /// The store holds another definition under the template's key (registered elsewhere with different
    /// content): bump the version to change a template.
    #[error("template `{0}` is stored with a different definition; register a new version instead")]
    TemplateConflict(String),
    /// The store holds as many steps as event ids can name.
    #[error("the store is full: step ids would pass {0}")]
    Full(i64),
    /// The database failed.
    #[error("create_task: {0}")]
    Database(#[from] sqlx::Error),
    /// A row does not hold what the store wrote.
    #[error("create_task: corrupt row: {0}")]
    CorruptRow(String),
}

/// Reading tasks or steps for a client ([`crate::Store::get_task`], `list_tasks`, `task_steps`, `health`)
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("read: {0}")]
    Database(#[from] sqlx::Error),
    /// A row does not hold what the store wrote.
    #[error("read: corrupt row: {0}")]
    CorruptRow(String),
}

/// [`crate::Store::cancel_task`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// The database failed.
    #[error("cancel_task: {0}")]
    Database(#[from] sqlx::Error),
}

/// Whether an error of a client call is worth retrying later: a store outage is, anything else is not.
pub trait Recoverable {
    /// The same call may succeed later.
    fn recoverable(&self) -> bool;
}

impl Recoverable for CreateTaskError {
    fn recoverable(&self) -> bool {
        matches!(self, Self::Database(e) if is_outage(e))
    }
}

impl Recoverable for ReadError {
    fn recoverable(&self) -> bool {
        matches!(self, Self::Database(e) if is_outage(e))
    }
}

impl Recoverable for CancelError {
    fn recoverable(&self) -> bool {
        matches!(self, Self::Database(e) if is_outage(e))
    }
}

impl Recoverable for ConnectError {
    fn recoverable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Open { .. } => true,
            Self::Rejected { source, .. } => is_outage(source),
            Self::InvalidUrl { .. } | Self::Migrate(_) => false,
        }
    }
}
