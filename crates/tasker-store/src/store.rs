//! The store: connection, enqueue, claim, extend, complete, retry, status, listen.

use crate::error::*;
use crate::migrations;
use crate::templates::{template, Template};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The PostgreSQL channel notified (empty payload) when steps become ready.
pub const READY_CHANNEL: &str = "tasker_steps_ready";

/// Tasks per enqueue transaction.
const ENQUEUE_BATCH: usize = 500;
/// Rows per multi-row INSERT statement. Small on purpose: sqlx's SQLite driver looks up every bind
/// parameter by name, which makes one statement's cost grow with the square of its parameters (profiled:
/// 1000 rows x 12 parameters spent 72% in `sqlite3_bind_parameter_name`); 64 rows keep that negligible and
/// cost PostgreSQL little.
const INSERT_ROWS: usize = 64;
/// Rows per set-based UPDATE of `complete_batch` (same reason as [`INSERT_ROWS`]).
const SET_ROWS: usize = 64;

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

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// SQLite takes the write lock up front so two writers never deadlock on a lock upgrade.
    fn begin(self) -> &'static str {
        match self {
            Kind::Sqlite => "BEGIN IMMEDIATE",
            Kind::Postgres => "BEGIN",
        }
    }
    fn lock_rows(self) -> &'static str {
        match self {
            Kind::Sqlite => "",
            Kind::Postgres => " FOR UPDATE",
        }
    }
    fn skip_locked(self) -> &'static str {
        match self {
            Kind::Sqlite => "",
            Kind::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Runs `$body` with `$pool` bound to the backend's pool and `$kind` to its [`Kind`] (the body is compiled
/// once per backend, so the same sqlx calls serve both). Also used by `verify` (`#[macro_use]` in lib.rs).
macro_rules! on_backend {
    ($store:expr, $pool:ident, $kind:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => {
                let $kind = Kind::Sqlite;
                $body
            }
            Backend::Postgres($pool) => {
                let $kind = Kind::Postgres;
                $body
            }
        }
    };
}

/// A step store over SQLite or PostgreSQL. Cheap to clone (a pool handle); every method is safe to call from
/// any number of tasks, connections and processes sharing the database.
///
/// Step states: `pending` (a parent is not complete) -> `ready` -> `claimed` -> `complete` | `ready` (retryable
/// failure, after a backoff) | `error`. Invariants: a step is `ready` only when all its parents are
/// `complete`; a `claimed` step has a `claim_token`, and only a completion carrying that token is accepted;
/// a `claimed` step whose `visible_at` passed is claimable again (at-least-once), with a new token.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    options: StoreOptions,
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
    /// Attempts including this one.
    pub attempts: i64,
    /// The FfiStepEvent JSON (`event_id`, `task_uuid`, `step_uuid`, `task_sequence_step`...).
    pub event: Value,
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
    /// Age of the oldest live claim.
    pub oldest_claim_age: Option<Duration>,
}

impl StoreStatus {
    fn count_state(&mut self, state: &str, n: u64) {
        match state {
            "pending" => self.pending = n,
            "ready" => self.ready = n,
            "claimed" => self.claimed = n,
            "complete" => self.complete = n,
            _ => self.error = n,
        }
    }

    /// Steps not finished yet (pending, ready or claimed): 0 when every step is complete or in error.
    pub fn unfinished(&self) -> u64 {
        self.pending + self.ready + self.claimed
    }

    /// All steps.
    pub fn steps(&self) -> u64 {
        self.unfinished() + self.complete + self.error
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// `($1,$2,..),($n+1,..)` for `rows` rows of `cols` columns starting after `offset` parameters.
fn values(rows: usize, cols: usize, offset: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&(offset + r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

/// `$offset+1,..,$offset+n`.
fn list(n: usize, offset: usize) -> String {
    (1..=n)
        .map(|i| format!("${}", offset + i))
        .collect::<Vec<_>>()
        .join(",")
}

/// The URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!("{}://{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]);
            }
        }
    }
    url.to_string()
}

enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

fn parse_url(url: &str) -> Result<Target, ConnectError> {
    let invalid = |reason: String| ConnectError::InvalidUrl {
        url: redact(url),
        reason,
    };
    if url.trim().is_empty() {
        return Err(invalid("empty".into()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return PgConnectOptions::from_str(url)
            .map(Target::Postgres)
            .map_err(|e| invalid(e.to_string()));
    }
    let sqlite = if url.starts_with("sqlite:") {
        let opts = SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
        if url.contains("mode=") {
            opts
        } else {
            opts.create_if_missing(true)
        }
    } else if let Some(i) = url.find("://") {
        return Err(invalid(format!(
            "unsupported scheme `{}` (use sqlite://path?mode=rwc, a file path, or postgres://)",
            &url[..i]
        )));
    } else {
        SqliteConnectOptions::new().filename(url).create_if_missing(true)
    };
    Ok(Target::Sqlite(
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true),
    ))
}

/// Runs SQLite's migrations inside one `BEGIN IMMEDIATE` transaction. sqlx's migrator locks only on
/// PostgreSQL and MySQL (its SQLite `lock` is a no-op), so two processes opening a fresh file at once would
/// both create the tables and one would fail ("table tasks already exists"). Holding the write lock from
/// the start, the second opener waits (busy timeout) and then finds the migrations applied; each
/// migration's own transaction becomes a savepoint inside this one.
async fn migrate_sqlite(pool: &sqlx::SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    migrations::SQLITE.migrator().await?.run(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether a connect error is worth retrying (network, I/O, pool timeout) rather than a refusal.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        // SQLite reports "unable to open database file" (14) as a database error, and "database is locked"
        // (5, 6, with extended codes such as BUSY_RECOVERY) when another process is setting up the file
        // (switching it to WAL, recovering its WAL) at the moment we open it, which the busy timeout does
        // not always cover. The primary code is the low byte of the extended one.
        // Only SQLite's codes: PostgreSQL's SQLSTATEs are digits too (42501 would read as 5).
        sqlx::Error::Database(d) if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => matches!(
            d.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff),
            Some(5 | 6 | 14)
        ),
        _ => false,
    }
}

impl Store {
    /// Connects with [`StoreOptions::default`] (10 s connect timeout).
    pub async fn connect(url: &str) -> Result<Store, ConnectError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite:path`, a bare file path, created when missing,
    /// or `postgres://...`), retrying transient failures with backoff (50 ms doubling to 1 s) for at most
    /// `options.connect_timeout`, then runs the backend's migrations.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, ConnectError> {
        let target = parse_url(url)?;
        let started = Instant::now();
        let deadline = started + options.connect_timeout;
        let mut backoff = Duration::from_millis(50);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            // One probe connection per attempt (a pool would retry by itself until its acquire timeout and
            // hide the attempts), then a lazy pool that the migrations open for real.
            let attempt = match &target {
                Target::Sqlite(o) => {
                    match tokio::time::timeout(remaining, sqlx::SqliteConnection::connect_with(o)).await {
                        Ok(Ok(c)) => {
                            let _ = c.close().await;
                            Ok(Backend::Sqlite(
                                SqlitePoolOptions::new()
                                    .max_connections(options.max_connections.unwrap_or(4))
                                    .acquire_timeout(options.connect_timeout.max(Duration::from_secs(5)))
                                    .connect_lazy_with(o.clone()),
                            ))
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(sqlx::Error::PoolTimedOut),
                    }
                }
                Target::Postgres(o) => match tokio::time::timeout(remaining, sqlx::PgConnection::connect_with(o)).await
                {
                    Ok(Ok(c)) => {
                        let _ = c.close().await;
                        Ok(Backend::Postgres(
                            PgPoolOptions::new()
                                .max_connections(options.max_connections.unwrap_or(8))
                                .acquire_timeout(options.connect_timeout.max(Duration::from_secs(5)))
                                .connect_lazy_with(o.clone()),
                        ))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(sqlx::Error::PoolTimedOut),
                },
            };
            match attempt {
                Ok(backend) => {
                    match &backend {
                        Backend::Sqlite(p) => migrate_sqlite(p).await?,
                        Backend::Postgres(p) => migrations::POSTGRES.migrator().await?.run(p).await?,
                    }
                    return Ok(Store { backend, options });
                }
                Err(e) if !transient(&e) => {
                    return Err(ConnectError::Rejected {
                        url: redact(url),
                        source: e,
                    })
                }
                Err(e) => {
                    if Instant::now() + backoff >= deadline {
                        return Err(ConnectError::Unreachable {
                            url: redact(url),
                            attempts,
                            elapsed: started.elapsed(),
                            source: e,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

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
            Backend::Sqlite(pool) => {
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
        on_backend!(self, pool, _kind => pool.close().await)
    }

    /// Inserts `count` tasks of `template` (`linear` / `diamond`) in `namespace`, each with the context
    /// `context_json` (a JSON object, e.g. `{"even_number": 6}`) and fresh v7 UUIDs, in transactions of
    /// 500 tasks with multi-row INSERTs. Root steps are `ready` at once, the others `pending`. Returns the
    /// task UUIDs in insertion order.
    pub async fn enqueue(
        &self,
        namespace: &str,
        template_name: &str,
        count: usize,
        context_json: &[u8],
    ) -> Result<Vec<Uuid>, EnqueueError> {
        let t = template(template_name).ok_or_else(|| EnqueueError::UnknownTemplate(template_name.into()))?;
        let context: Value =
            serde_json::from_slice(context_json).map_err(|e| EnqueueError::InvalidContext(e.to_string()))?;
        if !context.is_object() {
            return Err(EnqueueError::InvalidContext("not an object".into()));
        }
        let context = context.to_string();
        let deps: Vec<String> = t
            .steps
            .iter()
            .map(|s| serde_json::to_string(s.dependencies).unwrap_or_else(|_| "[]".into()))
            .collect();
        let mut all = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            let n = left.min(ENQUEUE_BATCH);
            left -= n;
            let now = now_ms();
            let tasks: Vec<(Uuid, Uuid)> = (0..n).map(|_| (Uuid::now_v7(), Uuid::now_v7())).collect();
            let steps: Vec<(Uuid, Uuid, usize)> = tasks
                .iter()
                .flat_map(|(task, _)| (0..t.steps.len()).map(move |i| (Uuid::now_v7(), *task, i)))
                .collect();
            on_backend!(self, pool, kind => {
                let mut tx = pool.begin_with(kind.begin()).await?;
                for chunk in tasks.chunks(INSERT_ROWS) {
                    let sql = format!(
                        "INSERT INTO tasks (task_uuid, namespace, name, version, template, context, correlation_id, created_at) VALUES {}",
                        values(chunk.len(), 8, 0)
                    );
                    let mut q = sqlx::query(&sql);
                    for (task, corr) in chunk {
                        q = q.bind(task.to_string()).bind(namespace).bind(t.name).bind(t.version)
                            .bind(t.short_name).bind(&context).bind(corr.to_string()).bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in steps.chunks(INSERT_ROWS) {
                    let sql = format!(
                        "INSERT INTO workflow_steps (step_uuid, task_uuid, name, template, handler, dependencies, \
                         pending_parents, state, max_attempts, visible_at, created_at, updated_at) VALUES {}",
                        values(chunk.len(), 12, 0)
                    );
                    let mut q = sqlx::query(&sql);
                    for (step, task, i) in chunk {
                        let s = &t.steps[*i];
                        let parents = s.dependencies.len() as i64;
                        q = q.bind(step.to_string()).bind(task.to_string()).bind(s.name).bind(t.short_name)
                            .bind(s.handler).bind(&deps[*i]).bind(parents)
                            .bind(if parents == 0 { "ready" } else { "pending" })
                            .bind(t.max_attempts).bind(now).bind(now).bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                if kind == Kind::Postgres {
                    sqlx::query("SELECT pg_notify($1, '')").bind(READY_CHANNEL).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            });
            all.extend(tasks.into_iter().map(|(task, _)| task));
        }
        Ok(all)
    }

    /// Claims up to `max` claimable steps (ready and due, or claimed with an expired deadline and attempts
    /// left), oldest deadline first: each gets state `claimed`, a fresh random claim token (its `event_id`),
    /// `visible_at = now + visibility` and `attempts + 1`. PostgreSQL locks with `FOR UPDATE SKIP LOCKED`, so
    /// concurrent claimers (any process) never get the same step; SQLite claims in one `BEGIN IMMEDIATE`
    /// transaction. When fewer than `max` are found, expired claims with no attempts left are moved to
    /// `error`.
    pub async fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<ClaimedStep>, ClaimError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let deadline = now + ms(visibility);
        let eligible =
            "state IN ('ready', 'claimed') AND visible_at <= $1 AND (state = 'ready' OR attempts < max_attempts)";
        let returning = "step_uuid, task_uuid, name, template, attempts, claim_token";
        let claimed: Vec<ClaimedStep> = on_backend!(self, pool, kind => {
            let sql = match kind {
                Kind::Postgres => format!(
                    "WITH picked AS (SELECT step_uuid FROM workflow_steps WHERE {eligible} \
                     ORDER BY visible_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     UPDATE workflow_steps AS s SET state = 'claimed', claim_token = gen_random_uuid()::text, \
                     claimed_at = $1, visible_at = $2, attempts = s.attempts + 1, updated_at = $1 \
                     FROM picked WHERE s.step_uuid = picked.step_uuid RETURNING s.step_uuid, s.task_uuid, s.name, \
                     s.template, s.attempts, s.claim_token"
                ),
                Kind::Sqlite => format!(
                    "UPDATE workflow_steps SET state = 'claimed', claim_token = \
                     lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || \
                     substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) || \
                     substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))), \
                     claimed_at = $1, visible_at = $2, attempts = attempts + 1, updated_at = $1 \
                     WHERE step_uuid IN (SELECT step_uuid FROM workflow_steps INDEXED BY workflow_steps_claimable \
                     WHERE {eligible} ORDER BY visible_at LIMIT $3) RETURNING {returning}"
                ),
            };
            // Everything from the claim to the built events happens in one transaction: an error anywhere
            // rolls the claim back (no step is left claimed by nobody with an attempt used). A step whose own
            // rows cannot make an event is moved to `error` in the same transaction, so one corrupt row never
            // blocks the claimable steps behind it.
            let mut tx = pool.begin_with(kind.begin()).await?;
            let fetched = sqlx::query(&sql).bind(now).bind(deadline).bind(max as i64).fetch_all(&mut *tx).await?;
            let mut rows: Vec<ClaimRow> = Vec::with_capacity(fetched.len());
            for r in fetched {
                rows.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?));
            }
            let built = if rows.is_empty() {
                (Vec::new(), Vec::new())
            } else {
            // Tasks and completed parents of the claimed steps.
            let task_ids: Vec<&str> = {
                let mut seen = HashSet::new();
                rows.iter().map(|r| r.1.as_str()).filter(|t| seen.insert(*t)).collect()
            };
            let sql = format!(
                "SELECT task_uuid, namespace, name, version, context, correlation_id FROM tasks WHERE task_uuid IN ({})",
                list(task_ids.len(), 0)
            );
            let mut q = sqlx::query(&sql);
            for id in &task_ids { q = q.bind(*id); }
            let mut tasks = HashMap::new();
            for r in q.fetch_all(&mut *tx).await? {
                let row: TaskRow = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?);
                tasks.insert(row.0.clone(), row);
            }
            // Exactly the parents' rows, by the (task_uuid, name) key: a filter on `state` would let SQLite
            // pick the state index and scan every complete step of the store on each claim.
            let mut wanted: Vec<(&str, &str)> = rows
                .iter()
                .filter_map(|r| template(&r.3).and_then(|t| t.step(&r.2)).map(|d| (r.1.as_str(), d.dependencies)))
                .flat_map(|(task, deps)| deps.iter().map(move |p| (task, *p)))
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            let mut parents = HashMap::new();
            for chunk in wanted.chunks(SET_ROWS) {
                let sql = format!(
                    "WITH w(task_uuid, name) AS (VALUES {}) SELECT s.task_uuid, s.name, s.state, s.results \
                     FROM w JOIN workflow_steps s ON s.task_uuid = w.task_uuid AND s.name = w.name",
                    values(chunk.len(), 2, 0)
                );
                let mut q = sqlx::query(&sql);
                for (task, name) in chunk { q = q.bind(*task).bind(*name); }
                for r in q.fetch_all(&mut *tx).await? {
                    let state: String = r.try_get(2)?;
                    if state == "complete" {
                        let results: Option<String> = r.try_get(3)?;
                        parents.insert((r.try_get(0)?, r.try_get(1)?), results.unwrap_or_else(|| "null".into()));
                    }
                }
            }
            build_events(rows, &tasks, &parents)
            };
            let (steps, corrupt) = built;
            for (step_uuid, why) in &corrupt {
                let err = json!({
                    "success": false,
                    "status": "error",
                    "error": { "message": format!("the step's rows cannot make a step event: {why}"), "error_type": "corrupt_step", "retryable": false }
                })
                .to_string();
                sqlx::query("UPDATE workflow_steps SET state = 'error', claim_token = NULL, last_error = $2, updated_at = $1 \
                             WHERE step_uuid = $3")
                    .bind(now).bind(&err).bind(step_uuid).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            if steps.len() < max {
                self.expire_exhausted(now).await?;
            }
            steps
        });
        Ok(claimed)
    }
}

/// One claimed row: step uuid, task uuid, step name, template, attempts, claim token.
type ClaimRow = (String, String, String, String, i64, String);
/// One task row: task uuid, namespace, name, version, context, correlation id.
type TaskRow = (String, String, String, String, String, String);

/// Builds the step event of every claimed row from its task and its completed parents' results. A row
/// that cannot make one (unknown template or step, missing task, a context or a parent's results that are
/// not JSON, a parent that is not complete) is returned apart with the reason, its step uuid first.
fn build_events(
    rows: Vec<ClaimRow>,
    tasks: &HashMap<String, TaskRow>,
    parents: &HashMap<(String, String), String>,
) -> (Vec<ClaimedStep>, Vec<(String, String)>) {
    let mut out = Vec::with_capacity(rows.len());
    let mut corrupt_rows = Vec::new();
    for row in rows {
        let step_uuid = row.0.clone();
        match build_event(row, tasks, parents) {
            Ok(step) => out.push(step),
            Err(ClaimError::CorruptRow(why)) => corrupt_rows.push((step_uuid, why)),
            Err(other) => corrupt_rows.push((step_uuid, other.to_string())),
        }
    }
    (out, corrupt_rows)
}

fn build_event(
    row: ClaimRow,
    tasks: &HashMap<String, TaskRow>,
    parents: &HashMap<(String, String), String>,
) -> Result<ClaimedStep, ClaimError> {
    let corrupt = |what: String| ClaimError::CorruptRow(what);
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| corrupt(format!("uuid `{s}`: {e}")));
    let (step_uuid, task_uuid, name, template_name, attempts, token) = row;
    {
        let t: &Template = template(&template_name).ok_or_else(|| corrupt(format!("template `{template_name}`")))?;
        let def = t
            .step(&name)
            .ok_or_else(|| corrupt(format!("step `{name}` of `{template_name}`")))?;
        let task = tasks
            .get(&task_uuid)
            .ok_or_else(|| corrupt(format!("task `{task_uuid}` missing")))?;
        let context: Value =
            serde_json::from_str(&task.4).map_err(|e| corrupt(format!("context of `{task_uuid}`: {e}")))?;
        let mut dep_results = serde_json::Map::new();
        for p in def.dependencies {
            let raw = parents
                .get(&(task_uuid.clone(), p.to_string()))
                .ok_or_else(|| corrupt(format!("parent `{p}` of a claimed step is not complete")))?;
            let v: Value = serde_json::from_str(raw).map_err(|e| corrupt(format!("results of `{p}`: {e}")))?;
            dep_results.insert(p.to_string(), v);
        }
        let event = json!({
            "event_id": token,
            "task_uuid": task_uuid,
            "step_uuid": step_uuid,
            "correlation_id": task.5,
            "task_correlation_id": task.5,
            "parent_correlation_id": null,
            "task_sequence_step": {
                "task": {
                    "task_uuid": task_uuid,
                    "context": context,
                    "namespace_name": task.1,
                    "template_name": task.2,
                    "status": "in_progress",
                    "name": task.2,
                    "namespace": task.1,
                    "version": task.3,
                    "correlation_id": task.5,
                    "parent_correlation_id": null
                },
                "workflow_step": {
                    "workflow_step_uuid": step_uuid,
                    "task_uuid": task_uuid,
                    "name": name,
                    "template_step_name": name,
                    "inputs": {},
                    "results": null,
                    "state": "in_progress",
                    "attempts": attempts,
                    "max_attempts": t.max_attempts,
                    "retryable": true,
                    "in_process": true,
                    "processed": false
                },
                "dependency_results": { "results": dep_results },
                "step_definition": def.definition(t.max_attempts)
            }
        });
        Ok(ClaimedStep {
            claim_token: uuid(&token)?,
            step_uuid: uuid(&step_uuid)?,
            task_uuid: uuid(&task_uuid)?,
            step_name: name,
            attempts,
            event,
        })
    }
}

impl Store {
    /// Moves expired claims with no attempts left to `error` (at most 1000 per call).
    async fn expire_exhausted(&self, now: i64) -> Result<u64, sqlx::Error> {
        let err = json!({
            "success": false,
            "status": "error",
            "error": { "message": "claim expired with no attempts left", "error_type": "visibility_timeout", "retryable": false }
        })
        .to_string();
        on_backend!(self, pool, kind => {
            let sql = format!(
                "UPDATE workflow_steps SET state = 'error', claim_token = NULL, last_error = $2, updated_at = $1 \
                 WHERE step_uuid IN (SELECT step_uuid FROM workflow_steps WHERE state = 'claimed' AND visible_at <= $1 \
                 AND attempts >= max_attempts LIMIT 1000{})",
                kind.skip_locked()
            );
            Ok(sqlx::query(&sql).bind(now).bind(&err).execute(pool).await?.rows_affected())
        })
    }

    /// Pushes the deadline of each claim in `tokens` that is still held to `now + visibility`; returns how
    /// many were (a token missing from the count lost its claim: it was re-claimed or completed).
    pub async fn extend(&self, tokens: &[Uuid], visibility: Duration) -> Result<u64, ExtendError> {
        if tokens.is_empty() {
            return Ok(0);
        }
        let deadline = now_ms() + ms(visibility);
        let mut n = 0;
        for chunk in tokens.chunks(INSERT_ROWS) {
            n += on_backend!(self, pool, _kind => {
                let sql = format!(
                    "UPDATE workflow_steps SET visible_at = $1 WHERE state = 'claimed' AND claim_token IN ({})",
                    list(chunk.len(), 1)
                );
                let mut q = sqlx::query(&sql).bind(deadline);
                for t in chunk { q = q.bind(t.to_string()); }
                q.execute(pool).await?.rows_affected()
            });
        }
        Ok(n)
    }

    /// Gives claims back without using an attempt: each step in `tokens` still held by its token becomes
    /// `ready` now with `attempts - 1` (a worker stopping with events its handlers never read). Returns how
    /// many were released (a missing one was already completed, or re-claimed after its deadline).
    pub async fn release(&self, tokens: &[Uuid]) -> Result<u64, ReleaseError> {
        if tokens.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut n = 0;
        for chunk in tokens.chunks(INSERT_ROWS) {
            n += on_backend!(self, pool, kind => {
                let sql = format!(
                    "UPDATE workflow_steps SET state = 'ready', claim_token = NULL, attempts = attempts - 1, \
                     visible_at = $1, updated_at = $1 WHERE state = 'claimed' AND claim_token IN ({})",
                    list(chunk.len(), 1)
                );
                let mut tx = pool.begin_with(kind.begin()).await?;
                let mut q = sqlx::query(&sql).bind(now);
                for t in chunk { q = q.bind(t.to_string()); }
                let n = q.execute(&mut *tx).await?.rows_affected();
                if n > 0 && kind == Kind::Postgres {
                    sqlx::query("SELECT pg_notify($1, '')").bind(READY_CHANNEL).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                n
            });
        }
        Ok(n)
    }

    /// The retry delay after `attempts` attempts: `backoff_base · 2^(attempts-1)`, capped at `backoff_max`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let shift = attempts.saturating_sub(1).clamp(0, 20) as u32;
        (self.options.backoff_base * (1u32 << shift)).min(self.options.backoff_max)
    }

    /// Persists completions `(claim token, StepExecutionResult JSON)` in one transaction and reports each
    /// item's outcome in input order. A token that no longer holds its step is [`CompletionOutcome::Refused`]
    /// (the newer claim wins). Success: `complete`, results stored, children whose parents are all complete
    /// become `ready`. Failure with `error.retryable == true` and attempts left: `ready` after
    /// [`Store::backoff`]; otherwise `error`. The result JSON is stored as given (`results` or `last_error`).
    /// On PostgreSQL, rows are locked in task order (no deadlock between concurrent batches) and a batch
    /// that still hits a deadlock or serialization failure is retried up to 3 times.
    pub async fn complete_batch<B: AsRef<[u8]>>(
        &self,
        items: &[(Uuid, B)],
    ) -> Result<Vec<CompletionOutcome>, CompleteError> {
        let mut tries = 0;
        loop {
            match self.complete_once(items).await {
                Err(CompleteError::Database(sqlx::Error::Database(d)))
                    if tries < 3 && matches!(d.code().as_deref(), Some("40P01") | Some("40001")) =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn complete_once<B: AsRef<[u8]>>(
        &self,
        items: &[(Uuid, B)],
    ) -> Result<Vec<CompletionOutcome>, CompleteError> {
        let mut outcomes = vec![CompletionOutcome::Refused; items.len()];
        // (index, token, success, retryable, json)
        let mut work: Vec<(usize, String, bool, bool, String)> = Vec::with_capacity(items.len());
        for (i, (token, bytes)) in items.iter().enumerate() {
            let bytes = bytes.as_ref();
            let v: Value = match serde_json::from_slice(bytes) {
                Ok(v) => v,
                Err(e) => {
                    outcomes[i] = CompletionOutcome::Invalid(format!("result is not JSON: {e}"));
                    continue;
                }
            };
            let Some(success) = v.get("success").and_then(Value::as_bool) else {
                outcomes[i] = CompletionOutcome::Invalid("result has no boolean `success`".into());
                continue;
            };
            let retryable = v["error"]["retryable"].as_bool() == Some(true);
            let text = String::from_utf8_lossy(bytes).into_owned();
            work.push((i, token.to_string(), success, retryable, text));
        }
        if work.is_empty() {
            return Ok(outcomes);
        }
        let now = now_ms();
        on_backend!(self, pool, kind => {
            let mut tx = pool.begin_with(kind.begin()).await?;
            // Lock order: PostgreSQL row locks are taken in step-uuid (v7: task creation) order.
            let sql = format!(
                "SELECT claim_token, task_uuid, name, template, attempts, max_attempts FROM workflow_steps \
                 WHERE state = 'claimed' AND claim_token IN ({}) ORDER BY task_uuid, name{}",
                list(work.len(), 0),
                kind.lock_rows()
            );
            let mut q = sqlx::query(&sql);
            for w in &work { q = q.bind(&w.1); }
            let mut held: HashMap<String, (String, String, String, i64, i64)> = HashMap::new();
            let mut order: Vec<String> = Vec::new();
            for r in q.fetch_all(&mut *tx).await? {
                let token: String = r.try_get(0)?;
                order.push(token.clone());
                held.insert(token, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?));
            }
            // A token given twice: the first item counts, the rest are Refused.
            let mut by_token: HashMap<&str, &(usize, String, bool, bool, String)> = HashMap::new();
            for w in &work {
                by_token.entry(w.1.as_str()).or_insert(w);
            }
            // Successes are applied as sets (a few statements per batch instead of two per step); failures,
            // rare, one by one.
            let mut successes: Vec<(&str, &str, usize, &str)> = Vec::new(); // (token, json, index, task)
            let mut children: HashMap<(&str, &'static str), i64> = HashMap::new();
            for token in &order {
                let (i, _, success, retryable, text) = by_token[token.as_str()];
                let (task_uuid, name, template_name, attempts, max_attempts) = &held[token];
                if *success {
                    let t = template(template_name)
                        .ok_or_else(|| CompleteError::CorruptRow(format!("template `{template_name}`")))?;
                    for child in t.children(name) {
                        *children.entry((task_uuid.as_str(), child)).or_insert(0) += 1;
                    }
                    successes.push((token.as_str(), text.as_str(), *i, task_uuid.as_str()));
                    outcomes[*i] = CompletionOutcome::Completed { ready_children: 0 };
                } else if *retryable && attempts < max_attempts {
                    let backoff = self.backoff(*attempts);
                    sqlx::query("UPDATE workflow_steps SET state = 'ready', last_error = $2, claim_token = NULL, \
                                 visible_at = $3, updated_at = $4 WHERE claim_token = $1")
                        .bind(token).bind(text).bind(now + ms(backoff)).bind(now).execute(&mut *tx).await?;
                    outcomes[*i] = CompletionOutcome::RetryScheduled { attempts: *attempts, backoff };
                } else {
                    sqlx::query("UPDATE workflow_steps SET state = 'error', last_error = $2, claim_token = NULL, \
                                 updated_at = $3 WHERE claim_token = $1")
                        .bind(token).bind(text).bind(now).execute(&mut *tx).await?;
                    outcomes[*i] = CompletionOutcome::Failed { attempts: *attempts };
                }
            }
            for chunk in successes.chunks(SET_ROWS) {
                let sql = format!(
                    "WITH v(token, results) AS (VALUES {}) UPDATE workflow_steps SET state = 'complete', \
                     results = v.results, claim_token = NULL, updated_at = $1 FROM v \
                     WHERE workflow_steps.claim_token = v.token",
                    values(chunk.len(), 2, 1)
                );
                let mut q = sqlx::query(&sql).bind(now);
                for (token, text, _, _) in chunk { q = q.bind(*token).bind(*text); }
                q.execute(&mut *tx).await?;
            }
            // Children lose one pending parent per parent completed in this batch; those left with none are
            // ready. Sorted so PostgreSQL locks them in one global order (no deadlock between batches).
            let mut children: Vec<((&str, &str), i64)> = children.into_iter().collect();
            children.sort_unstable();
            let mut ready_by_task: HashMap<String, u64> = HashMap::new();
            for chunk in children.chunks(SET_ROWS) {
                if kind == Kind::Postgres {
                    let sql = format!(
                        "WITH w(task_uuid, name) AS (VALUES {}) SELECT 1 FROM w JOIN workflow_steps s \
                         ON s.task_uuid = w.task_uuid AND s.name = w.name ORDER BY s.task_uuid, s.name FOR UPDATE OF s",
                        values(chunk.len(), 2, 0)
                    );
                    let mut q = sqlx::query(&sql);
                    for ((task, name), _) in chunk { q = q.bind(*task).bind(*name); }
                    q.fetch_all(&mut *tx).await?;
                }
                let sql = format!(
                    "WITH d(task_uuid, name, n) AS (VALUES {}) UPDATE workflow_steps SET \
                     pending_parents = pending_parents - d.n, \
                     state = CASE WHEN pending_parents = d.n THEN 'ready' ELSE state END, \
                     visible_at = CASE WHEN pending_parents = d.n THEN $1 ELSE visible_at END, updated_at = $1 \
                     FROM d WHERE workflow_steps.task_uuid = d.task_uuid AND workflow_steps.name = d.name \
                     AND workflow_steps.state = 'pending' RETURNING workflow_steps.task_uuid, workflow_steps.state",
                    values(chunk.len(), 3, 1)
                );
                let mut q = sqlx::query(&sql).bind(now);
                for ((task, name), n) in chunk { q = q.bind(*task).bind(*name).bind(*n); }
                for r in q.fetch_all(&mut *tx).await? {
                    let state: String = r.try_get(1)?;
                    if state == "ready" {
                        *ready_by_task.entry(r.try_get(0)?).or_insert(0) += 1;
                    }
                }
            }
            // A child made ready is credited to the batch's last completed parent in its task.
            let notify = !ready_by_task.is_empty();
            for (_, _, i, task) in successes.iter().rev() {
                if let Some(n) = ready_by_task.remove(*task) {
                    outcomes[*i] = CompletionOutcome::Completed { ready_children: n };
                }
            }
            if notify && kind == Kind::Postgres {
                sqlx::query("SELECT pg_notify($1, '')").bind(READY_CHANNEL).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(outcomes)
    }

    /// Puts every step in `error` back to `ready` now, with `attempts` reset to 0 (a full `max_attempts`
    /// again); `last_error` is kept. Returns how many.
    pub async fn retry_errors(&self) -> Result<u64, RetryError> {
        let now = now_ms();
        Ok(on_backend!(self, pool, kind => {
            let mut tx = pool.begin_with(kind.begin()).await?;
            let n = sqlx::query("UPDATE workflow_steps SET state = 'ready', attempts = 0, claim_token = NULL, \
                                 visible_at = $1, updated_at = $1 WHERE state = 'error'")
                .bind(now).execute(&mut *tx).await?.rows_affected();
            if n > 0 && kind == Kind::Postgres {
                sqlx::query("SELECT pg_notify($1, '')").bind(READY_CHANNEL).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n
        }))
    }

    /// Claims currently held (`claimed` steps, expired ones included), oldest first, at most `limit`: the
    /// operator's answer to "what is in flight", and the tests' handle on a dead worker's claims.
    pub async fn held_claims(&self, limit: usize) -> Result<Vec<HeldClaim>, StatusError> {
        let now = now_ms();
        let mut out = Vec::new();
        on_backend!(self, pool, _kind => {
            let rows = sqlx::query(
                "SELECT claim_token, step_uuid, attempts, visible_at FROM workflow_steps \
                 WHERE state = 'claimed' ORDER BY claimed_at LIMIT $1",
            )
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(pool)
            .await?;
            for r in rows {
                let token: String = r.try_get(0)?;
                let step: String = r.try_get(1)?;
                let deadline: i64 = r.try_get(3)?;
                let parse = |s: &str| Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)));
                out.push(HeldClaim {
                    claim_token: parse(&token)?,
                    step_uuid: parse(&step)?,
                    attempts: r.try_get(2)?,
                    expired: deadline <= now,
                });
            }
        });
        Ok(out)
    }

    /// Counts of steps by state only (one indexed `GROUP BY`): cheap enough for a once-a-second progress
    /// line. The task counts and claim ages of the returned status are left at zero.
    pub async fn step_counts(&self) -> Result<StoreStatus, StatusError> {
        let mut s = StoreStatus::default();
        on_backend!(self, pool, _kind => {
            for r in sqlx::query("SELECT state, COUNT(*) FROM workflow_steps GROUP BY state").fetch_all(pool).await? {
                let state: String = r.try_get(0)?;
                let n: i64 = r.try_get(1)?;
                s.count_state(&state, n as u64);
            }
        });
        Ok(s)
    }

    /// Counts of tasks and steps by state, expired claims and the oldest claim's age (scans the tables: an
    /// operator's view, not a hot path).
    pub async fn status(&self) -> Result<StoreStatus, StatusError> {
        let now = now_ms();
        let mut s = self.step_counts().await?;
        on_backend!(self, pool, _kind => {
            let count = |sql: &'static str| sqlx::query(sql).bind(now).fetch_one(pool);
            s.tasks = count("SELECT COUNT(*) FROM tasks WHERE $1 = $1").await?.try_get::<i64, _>(0)? as u64;
            s.tasks_complete = count("SELECT COUNT(*) FROM tasks t WHERE $1 = $1 AND NOT EXISTS \
                (SELECT 1 FROM workflow_steps w WHERE w.task_uuid = t.task_uuid AND w.state <> 'complete')")
                .await?.try_get::<i64, _>(0)? as u64;
            s.tasks_error = count("SELECT COUNT(DISTINCT task_uuid) FROM workflow_steps WHERE state = 'error' AND $1 = $1")
                .await?.try_get::<i64, _>(0)? as u64;
            s.claims_expired = count("SELECT COUNT(*) FROM workflow_steps WHERE state = 'claimed' AND visible_at <= $1")
                .await?.try_get::<i64, _>(0)? as u64;
            let oldest: Option<i64> = count("SELECT MIN(claimed_at) FROM workflow_steps WHERE state = 'claimed' AND $1 = $1")
                .await?.try_get(0)?;
            s.oldest_claim_age = oldest.map(|t| Duration::from_millis((now - t).max(0) as u64));
        });
        Ok(s)
    }

    /// A listener of [`READY_CHANNEL`] (PostgreSQL only): wakes when steps become ready (enqueue, a parent's
    /// completion, `retry_errors`). Notifications are hints: a retry whose backoff ends and an expired claim
    /// notify nobody, and a notification can be lost on reconnect, so a worker must also poll `claim` slowly
    /// (every 1 s, or at the shortest backoff) when idle.
    pub async fn listen(&self) -> Result<ReadyListener, ListenError> {
        match &self.backend {
            Backend::Sqlite(_) => Err(ListenError::Unsupported),
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
