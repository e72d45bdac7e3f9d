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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A job for the connection thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Statements kept prepared per connection (the hot path uses 15).
const STATEMENT_CACHE: usize = 32;

/// How long a statement waits for another connection's write lock (as the sqlx pool's connections do).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Jobs run on the connection thread between two requests to the checkpointer thread. A claim or a
/// completion batch of 256 steps writes ~60 WAL pages, so 16 jobs is about SQLite's own auto-checkpoint
/// threshold (1000 pages).
const CHECKPOINT_EVERY_JOBS: u32 = 16;

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
///
/// The WAL is checkpointed mostly by a second thread with a connection of its own, not by the connection
/// thread's commits (SQLite's auto-checkpoint, off on that connection): a checkpoint copies pages into the
/// database file and syncs it, ~10% of the writer's time when it ran there (perf, 500 000-step store-alone
/// run), and a `PASSIVE` checkpoint never blocks the writer, so the bulk of the copy overlaps the next claims
/// and completions; the connection thread then copies what was committed meanwhile, so the WAL restarts.
#[derive(Debug)]
pub(crate) struct Lite {
    /// `None` once closed.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Joined by [`Lite::close`]: the connection thread, then the checkpointer (which ends when the
    /// connection thread drops its sender).
    thread: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The database file, once opened.
    path: std::sync::OnceLock<std::path::PathBuf>,
}

impl Lite {
    /// A handle whose thread is not started yet: every job fails with [`LiteError::Closed`] until
    /// [`Lite::open`].
    pub fn unopened() -> Self {
        Self {
            jobs: Mutex::new(None),
            thread: Mutex::new(Vec::new()),
            path: std::sync::OnceLock::new(),
        }
    }

    /// Opens `path` (already created and migrated) and starts the connection thread and its checkpointer.
    pub fn open(&self, path: &Path) -> Result<(), LiteError> {
        let conn = connect(path)?;
        let _ = self.path.set(path.to_path_buf());
        // The checkpointer thread checkpoints instead (see `Lite`).
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpointer_conn = connect(path)?;
        // A request pending is enough: requests made while a pass runs fold into one.
        let (checkpoint_tx, checkpoint_rx) = mpsc::sync_channel::<()>(1);
        let pass_done = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let pass_done = Arc::clone(&pass_done);
            std::thread::Builder::new()
                .name("tasker-store-ckpt".into())
                .spawn(move || {
                    while checkpoint_rx.recv().is_ok() {
                        // Busy (another connection checkpointing) or failing: the next request tries again;
                        // nothing committed depends on it.
                        let _ = checkpointer_conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
                        // Pairs with the connection thread's swap: it finishes the pass between two jobs.
                        pass_done.store(true, Ordering::Release);
                    }
                })
                .map_err(LiteError::Spawn)?
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tasker-store-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                let mut since_checkpoint = 0u32;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                    since_checkpoint += 1;
                    if since_checkpoint >= CHECKPOINT_EVERY_JOBS {
                        since_checkpoint = 0;
                        let _ = checkpoint_tx.try_send(());
                    }
                    // Pairs with the checkpointer's store. The frames committed while its pass ran are copied
                    // here, outside any transaction, so the WAL is fully checkpointed and the next commit
                    // starts it over: with the checkpointer alone, a writer that commits back to back never
                    // lets a checkpoint catch up, and the WAL grew without bound (1 GB in a 500 000-step run;
                    // a blocking `RESTART` from the checkpointer starves the same way).
                    if pass_done.swap(false, Ordering::Acquire) {
                        let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
                    }
                }
            })
            .map_err(LiteError::Spawn)?;
        *self.jobs.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = vec![thread, checkpointer];
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

    /// The database file (`None` before [`Lite::open`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.get().map(|p| p.as_path())
    }

    /// Stops the threads after the jobs already sent, and waits for them (on a blocking thread).
    pub async fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads = std::mem::take(&mut *self.thread.lock().unwrap_or_else(|p| p.into_inner()));
        if !threads.is_empty() {
            let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
        }
    }
}

/// A connection to `path` with the same settings as the sqlx pool's connections (store.rs `parse_url`): WAL
/// is a property of the file, set at connect; the others are per connection.
fn connect(path: &Path) -> Result<Connection, LiteError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA temp_store = memory; PRAGMA cache_size = -32768; \
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
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
