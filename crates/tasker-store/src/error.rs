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
