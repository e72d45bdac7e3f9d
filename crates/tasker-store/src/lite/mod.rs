//! SQLite's hot path: claim, complete, extend and release run on one rusqlite connection owned by a thread of
//! its own, with every statement prepared once and cached, rows read in place and parameters bound per row.
//!
//! Why not sqlx here (measured, BENCHMARKS.md "The step store"): sqlx's SQLite driver hands every statement
//! and every row across threads and binds by name, so a batch had to travel as one JSON parameter and come
//! back as one aggregated JSON row (SQLite's JSON functions, copies and thread switches were most of a
//! step's cost). Here an operation crosses threads once: the caller sends a job and awaits its answer.
//!
//! Invariants: the thread runs one job at a time, in the order sent; a job's transaction commits or rolls
//! back before its answer is sent (an answer is never sent for uncommitted work); a job that panics rolls
//! back (the transaction is dropped while unwinding) and its caller gets [`LiteError::Panicked`]; the thread
//! lives until [`Lite::close`] or until every handle is dropped.

pub(crate) mod claim;
pub(crate) mod claims;
pub(crate) mod complete;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::sync::{mpsc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A job for the connection thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Statements kept prepared per connection (the hot path uses 15).
const STATEMENT_CACHE: usize = 32;

/// How long a statement waits for another connection's write lock (as the sqlx pool's connections do).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An error of the embedded hot path.
#[derive(Debug, thiserror::Error)]
pub enum LiteError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store was closed ([`crate::Store::close`]).
    #[error("the store is closed")]
    Closed,
    /// A job panicked; its transaction rolled back.
    #[error("the store's SQLite thread panicked: {0}")]
    Panicked(String),
    /// The connection thread could not be started.
    #[error("starting the store's SQLite thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The handle of the connection thread.
#[derive(Debug)]
pub(crate) struct Lite {
    /// `None` once closed.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Joined by [`Lite::close`].
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Lite {
    /// A handle whose thread is not started yet: every job fails with [`LiteError::Closed`] until
    /// [`Lite::open`].
    pub fn unopened() -> Self {
        Self {
            jobs: Mutex::new(None),
            thread: Mutex::new(None),
        }
    }

    /// Opens `path` (already created and migrated) and starts the connection thread.
    pub fn open(&self, path: &Path) -> Result<(), LiteError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The same settings as the sqlx pool's connections (store.rs `parse_url`): WAL is a property of the
        // file, set at connect; the others are per connection.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA temp_store = memory; PRAGMA cache_size = -32768; \
             PRAGMA foreign_keys = ON;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tasker-store-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(LiteError::Spawn)?;
        *self.jobs.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    /// Runs `f` on the connection thread and waits for its answer.
    pub async fn run<T, E>(&self, f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<LiteError> + Send + 'static,
    {
        let (answer_tx, answer_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)));
            let answer = outcome.unwrap_or_else(|panic| Err(E::from(LiteError::Panicked(panic_text(&panic)))));
            // The caller may have gone (its future dropped): the work is done either way.
            let _ = answer_tx.send(answer);
        });
        {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let sent = jobs.as_ref().map(|s| s.send(job));
            if !matches!(sent, Some(Ok(()))) {
                return Err(E::from(LiteError::Closed));
            }
        }
        answer_rx.await.unwrap_or_else(|_| Err(E::from(LiteError::Closed)))
    }

    /// Stops the thread after the jobs already sent, and waits for it (on a blocking thread).
    pub async fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// `BEGIN IMMEDIATE`: the write lock up front, so two writers never deadlock on a lock upgrade.
pub(crate) fn begin(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, rusqlite::Error> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Adds the per-state deltas to a random slot of the step counts (see `step_counts` in the schema).
pub(crate) fn add_counts(
    tx: &rusqlite::Transaction<'_>,
    deltas: &crate::store::CountDeltas,
) -> Result<(), rusqlite::Error> {
    if deltas.is_zero() {
        return Ok(());
    }
    let [a, b, c, d, e, f] = deltas.0;
    tx.prepare_cached(crate::sql::SQLITE.counts_add)?
        .execute((crate::store::count_slot(), a, b, c, d, e, f))?;
    Ok(())
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
