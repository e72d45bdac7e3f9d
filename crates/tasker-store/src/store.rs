//! The store: its handle and the shapes it returns (claimed steps, completion outcomes, status), shared helpers
//! of the operations (`claim`, `complete`, `enqueue`, ... each in its own module), checkpoint, close, listen.

use crate::error::*;
use crate::event::TaskCache;
use crate::lite::Lite;
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::sqlite::SqlitePool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The PostgreSQL channel notified (empty payload) when steps become ready.
pub const READY_CHANNEL: &str = "tasker_steps_ready";

/// How [`Store::connect_with`] connects and how failures back off.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Bound on the whole connect (all attempts, with backoff from 50 ms doubling up to 1 s). Default 10 s.
    pub connect_timeout: Duration,
    /// Pool size. Default 8 (PostgreSQL) / 4 (SQLite: one writer at a time anyway).
    pub max_connections: Option<u32>,
    /// First retry delay of a retryable failure; doubles per attempt. Default 1 s.
    pub backoff_base: Duration,
    /// Cap of the retry delay. Default 30 s.
    pub backoff_max: Duration,
}

impl StoreOptions {
    /// The retry delay after `attempts` attempts: `backoff_base · 2^(attempts-1)`, capped at `backoff_max`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let shift = attempts.saturating_sub(1).clamp(0, 20) as u32;
        (self.backoff_base * (1u32 << shift)).min(self.backoff_max)
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_connections: None,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The connection pools: sqlx's for every operation on PostgreSQL and for the cold operations on SQLite
/// (enqueue, status, verify, migrations), and SQLite's hot-path connection thread.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool, Arc<Lite>),
    Postgres(PgPool),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// SQLite takes the write lock up front so two writers never deadlock on a lock upgrade.
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Kind::Sqlite => "BEGIN IMMEDIATE",
            Kind::Postgres => "BEGIN",
        }
    }
}

/// Runs `$body` with `$pool` bound to the backend's pool and `$kind` to its [`Kind`] (the body is compiled
/// once per backend, so the same sqlx calls serve both). Also used by `verify` (`#[macro_use]` in lib.rs).
macro_rules! on_backend {
    ($store:expr, $pool:ident, $kind:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool, _) => {
                let $kind = $crate::store::Kind::Sqlite;
                $body
            }
            $crate::store::Backend::Postgres($pool) => {
                let $kind = $crate::store::Kind::Postgres;
                $body
            }
        }
    };
}

/// Adds a [`CountDeltas`] to a random slot of the step counts inside the transaction `$tx`.
macro_rules! add_counts {
    ($tx:ident, $q:expr, $deltas:expr) => {{
        let [a, b, c, d, e, f] = $deltas.0;
        sqlx::query($q.counts_add)
            .bind($crate::store::count_slot())
            .bind(a)
            .bind(b)
            .bind(c)
            .bind(d)
            .bind(e)
            .bind(f)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// A step store over SQLite or PostgreSQL. Cheap to clone (a pool handle); every method is safe to call from
/// any number of tasks, connections and processes sharing the database.
///
/// Step states: `pending` (a parent is not complete) -> `ready` -> `claimed` -> `complete` | `ready` (retryable
/// failure, after a backoff) | `error`; `pending` and `ready` -> `cancelled` when the task is cancelled
/// (never claimable again). Invariants: a step is `ready` only when all its parents are
/// `complete`; a `claimed` step has a `claim_token`, and only a completion carrying that token is accepted;
/// a `claimed` step whose `visible_at` passed is claimable again (at-least-once), with a new token.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    pub(crate) options: StoreOptions,
    /// Tasks by id, for building events without reading the task again (tasks never change).
    pub(crate) tasks: Arc<TaskCache>,
}

/// A claimed step: the event to hand to a handler and the token its completion must carry.
#[derive(Clone, Debug)]
pub struct ClaimedStep {
    /// The claim token, also the event's `event_id`.
    pub claim_token: Uuid,
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name.
    pub step_name: String,
    /// Its task's namespace (shared with the store's task cache: no copy per step).
    pub namespace: Arc<str>,
    /// Its task's correlation id (shared likewise).
    pub correlation_id: Arc<str>,
    /// Attempts including this one.
    pub attempts: i64,
    /// The FfiStepEvent JSON text (`event_id`, `task_uuid`, `step_uuid`, `task_sequence_step`...); the worker
    /// writes it into the ring as it is. JSON by construction: every string in it is escaped, and the stored
    /// JSON it embeds (the task's context, the parents' results) was checked when read.
    pub event: Box<str>,
}

impl ClaimedStep {
    /// The event parsed (tests, tools; the hot path never needs the tree).
    pub fn event_value(&self) -> Value {
        serde_json::from_str(&self.event).unwrap_or(Value::Null)
    }
}

/// A claim as [`Store::held_claims`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldClaim {
    /// The claim token (the event's `event_id`).
    pub claim_token: Uuid,
    /// The claimed step.
    pub step_uuid: Uuid,
    /// Attempts including this claim.
    pub attempts: i64,
    /// The deadline passed: another worker may claim the step.
    pub expired: bool,
}

/// What became of one completion of [`Store::complete_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompletionOutcome {
    /// Success stored; `ready_children` children became ready.
    Completed {
        /// Children whose parents are now all complete.
        ready_children: u64,
        /// This completion finished its task: every step of it is now complete (true for exactly one
        /// completion per task, in the transaction that completed its last step).
        task_complete: bool,
    },
    /// Retryable failure: the step is ready again after `backoff`.
    RetryScheduled {
        /// Attempts used so far.
        attempts: i64,
        /// Delay before it is claimable.
        backoff: Duration,
    },
    /// Non-retryable failure, or retryable with no attempts left: the step is in `error`.
    Failed {
        /// Attempts used.
        attempts: i64,
    },
    /// The token does not hold the step any more (the claim expired and the step was re-claimed, or it was
    /// already completed): nothing changed; the newer claim wins.
    Refused,
    /// The result JSON has no boolean `success`: nothing changed.
    Invalid(String),
}

/// Counts of tasks and steps, from [`Store::status`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// All tasks.
    pub tasks: u64,
    /// Tasks whose steps are all complete.
    pub tasks_complete: u64,
    /// Tasks with a step in error.
    pub tasks_error: u64,
    /// Steps by state.
    pub pending: u64,
    /// Steps ready (including those waiting out a retry backoff).
    pub ready: u64,
    /// Steps claimed (including expired claims not yet re-claimed).
    pub claimed: u64,
    /// Claimed steps whose deadline passed.
    pub claims_expired: u64,
    /// Steps complete.
    pub complete: u64,
    /// Steps in error.
    pub error: u64,
    /// Steps cancelled (pending or ready when their task was cancelled).
    pub cancelled: u64,
    /// Age of the oldest live claim.
    pub oldest_claim_age: Option<Duration>,
}

impl StoreStatus {
    pub(crate) fn count_state(&mut self, code: i64, n: u64) {
        match code {
            state::PENDING => self.pending = n,
            state::READY => self.ready = n,
            state::CLAIMED => self.claimed = n,
            state::COMPLETE => self.complete = n,
            state::CANCELLED => self.cancelled = n,
            _ => self.error = n,
        }
    }

    /// Steps not finished yet (pending, ready or claimed): 0 when every step is complete, in error or
    /// cancelled.
    pub fn unfinished(&self) -> u64 {
        self.pending + self.ready + self.claimed
    }

    /// All steps.
    pub fn steps(&self) -> u64 {
        self.unfinished() + self.complete + self.error + self.cancelled
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The first of each pair (PostgreSQL's hot path binds pairs as two `bigint[]` parameters, `unnest`ed
/// together).
pub(crate) fn firsts(pairs: &[(i64, i64)]) -> Vec<i64> {
    pairs.iter().map(|p| p.0).collect()
}

/// The second of each pair.
pub(crate) fn seconds(pairs: &[(i64, i64)]) -> Vec<i64> {
    pairs.iter().map(|p| p.1).collect()
}

/// Runs `op` again, at most 3 more times, while it fails with a PostgreSQL deadlock or serialization failure
/// (`database` finds the sqlx error inside the operation's error).
pub(crate) async fn retry_conflicts<T, E, Fut>(
    mut op: impl FnMut() -> Fut,
    database: fn(&E) -> Option<&sqlx::Error>,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let conflict = |e: &sqlx::Error| matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01") | Some("40001")));
    let mut tries = 0;
    loop {
        match op().await {
            Err(e) if tries < 3 && database(&e).is_some_and(conflict) => tries += 1,
            other => return other,
        }
    }
}

/// Wakes PostgreSQL listeners of [`READY_CHANNEL`] when `$tx` commits (steps became ready).
macro_rules! notify_ready {
    ($tx:ident) => {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind($crate::store::READY_CHANNEL)
            .execute(&mut *$tx)
            .await?
    };
}

/// A step-count slot for this transaction's deltas (see the `step_counts` table): random, so concurrent
/// writers rarely update the same row.
pub(crate) fn count_slot() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() % 16) as i64
}

/// Per-state deltas of the step counts, indexed by state code.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CountDeltas(pub [i64; 6]);

impl CountDeltas {
    /// `n` steps moved from state `from` to state `to`.
    pub fn moved(&mut self, from: i64, to: i64, n: i64) {
        self.0[from as usize] -= n;
        self.0[to as usize] += n;
    }
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|d| *d == 0)
    }
}

/// Outcome codes of the attempt history (`step_attempts.outcome`).
pub(crate) mod outcome {
    pub const RETRY_SCHEDULED: i64 = 1;
    pub const FAILED: i64 = 2;
    pub const CLAIM_EXPIRED: i64 = 3;
    pub const CHECKPOINT_YIELDED: i64 = 4;
}

/// Step state codes (`steps.state`).
pub(crate) mod state {
    pub const PENDING: i64 = 0;
    pub const READY: i64 = 1;
    pub const CLAIMED: i64 = 2;
    pub const COMPLETE: i64 = 3;
    pub const ERROR: i64 = 4;
    pub const CANCELLED: i64 = 5;
}

impl Store {
    /// Whether this store is PostgreSQL (shared by many processes, with notifications).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The options in use.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Makes everything committed so far durable in the main database file: SQLite checkpoints its WAL
    /// (`wal_checkpoint(TRUNCATE)`), PostgreSQL runs `CHECKPOINT` (a superuser's command; skipped for other
    /// roles). Benchmarks end their timing with it.
    pub async fn checkpoint(&self) -> Result<(), sqlx::Error> {
        match &self.backend {
            Backend::Sqlite(pool, _) => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
            }
            Backend::Postgres(pool) => {
                let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                    .fetch_one(pool)
                    .await?;
                if superuser {
                    sqlx::query("CHECKPOINT").execute(pool).await?;
                }
            }
        }
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool, lite) => {
                lite.close().await;
                pool.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// The retry delay after `attempts` attempts: `backoff_base · 2^(attempts-1)`, capped at `backoff_max`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        self.options.backoff(attempts)
    }

    /// A look at whether anything committed to this SQLite store since the last look, without a database
    /// call ([`ChangeProbe`]); `None` on PostgreSQL (use [`Store::listen`]). Without a WAL index (an
    /// in-memory database) every look reports a change.
    pub fn change_probe(&self) -> Option<crate::ChangeProbe> {
        match &self.backend {
            Backend::Sqlite(_, lite) => lite.path().map(crate::change_probe::ChangeProbe::for_database),
            Backend::Postgres(_) => None,
        }
    }

    /// A listener of [`READY_CHANNEL`] (PostgreSQL only): wakes when steps become ready (enqueue, a parent's
    /// completion, `retry_errors`). Notifications are hints: a retry whose backoff ends and an expired claim
    /// notify nobody, and a notification can be lost on reconnect, so a worker must also poll `claim` slowly
    /// (every 1 s, or at the shortest backoff) when idle.
    pub async fn listen(&self) -> Result<ReadyListener, ListenError> {
        match &self.backend {
            Backend::Sqlite(..) => Err(ListenError::Unsupported),
            Backend::Postgres(pool) => {
                let mut l = PgListener::connect_with(pool).await?;
                l.listen(READY_CHANNEL).await?;
                Ok(ReadyListener { inner: l })
            }
        }
    }
}

/// Wake-ups for steps becoming ready, from [`Store::listen`].
pub struct ReadyListener {
    inner: PgListener,
}

impl ReadyListener {
    /// Waits for the next notification (reconnects by itself after a lost connection).
    pub async fn recv(&mut self) -> Result<(), ListenError> {
        self.inner.recv().await?;
        Ok(())
    }
}
