//! `tasker-ring store ...`: the step store from the command line. `enqueue` creates tasks from a template,
//! `status` counts tasks and steps by state, `retry` puts steps in error back to ready, `verify` checks
//! finished tasks' final values against the templates' reference math.
//!
//! Each command builds a tokio current-thread runtime and blocks on the store's async calls; nothing here
//! runs on the ring transport's hot path.

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tasker_store::{redact, templates, ConnectError, EnqueueError, Store, StoreOptions, StoreStatus, VerifyReport};

/// The `store` help text's exit codes (kept next to [`StoreError::exit_code`], which they describe).
pub const EXIT_CODES: &str = "\
Exit codes (errors are one line on stderr):
  0  ok
  1  the database failed during the command, or writing the output failed
  2  usage: unknown option or template, bad number (clap's message)
  3  invalid database URL: unsupported scheme (mysql://...), malformed
  4  database unreachable within --connect-timeout: server down, wrong port, an SQLite file that cannot be
     opened or created
  5  the server refused the connection: authentication, missing database, a file that is not SQLite
  6  schema migration failed: not a tasker store, or a newer schema
  7  verify: results do not match the templates' reference math (the report is still printed)";

/// Tasks per `enqueue` call: the store's own transaction size, so a failure says how many were inserted.
const CHUNK: usize = 5000;
/// Fewest tasks for which `enqueue` draws a progress bar (and only when stderr is a terminal).
const PROGRESS_MIN: usize = 5_000;
/// The schema tag of `store status --json`.
pub const STATUS_SCHEMA: &str = "tasker-ring/store-status/1";
/// The schema tag of `store verify --json`.
pub const VERIFY_SCHEMA: &str = "tasker-ring/store-verify/1";

/// Options of `tasker-ring store`.
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Create N tasks from a template (root steps ready, the others pending); print counts and the rate.
    #[command(after_help = EXIT_CODES)]
    Enqueue(EnqueueArgs),
    /// Counts of tasks and steps by state, expired claims and the oldest claim's age.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Put every step in error back to ready (attempts reset); print how many.
    #[command(after_help = EXIT_CODES)]
    Retry(RetryArgs),
    /// Check every task whose final step is complete against its template's reference math; print the
    /// counts and up to 10 mismatches (exit 7 when any does not match).
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
}

/// Where the store is and how long to try reaching it.
#[derive(Args, Debug)]
struct Database {
    /// Store URL: a file path or sqlite:PATH (SQLite, created when missing), sqlite://PATH?mode=rwc, or
    /// postgres://USER:PASSWORD@HOST:PORT/DB.
    /// [default: $TASKER_DATABASE_URL when set and not empty, else tasker.db in the working directory]
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Give up connecting after this many seconds (transient failures are retried with backoff until then).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    connect_timeout: Duration,
}

#[derive(Args, Debug)]
struct EnqueueArgs {
    #[command(flatten)]
    db: Database,
    /// Namespace of the new tasks.
    #[arg(long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Number of tasks to create.
    #[arg(long, value_name = "N")]
    count: usize,
    /// Task template: linear (4 steps in a chain) or diamond (start, two branches, end).
    #[arg(long, value_enum, default_value_t = TemplateName::Linear)]
    template: TemplateName,
    /// Pad each task's context JSON (`{"even_number":6}`) with a `padding` string to this many bytes (from 30).
    #[arg(long, value_name = "B", default_value_t = 0)]
    context_bytes: usize,
}

#[derive(Args, Debug)]
struct StatusArgs {
    #[command(flatten)]
    db: Database,
    /// Print one JSON object (schema `tasker-ring/store-status/1`) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RetryArgs {
    #[command(flatten)]
    db: Database,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    db: Database,
    /// Print one JSON object (schema `tasker-ring/store-verify/1`) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TemplateName {
    Linear,
    Diamond,
}

impl TemplateName {
    fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Diamond => "diamond",
        }
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}` is not a usable number of seconds: {e}"))
}

impl Database {
    /// `--database-url`, else a non-empty `TASKER_DATABASE_URL`, else [`tasker_store::DEFAULT_DATABASE`].
    fn url(&self) -> String {
        tasker_store::resolve_url(self.database_url.as_deref())
    }
}

/// Why a store command failed; each kind has its own exit code ([`EXIT_CODES`]).
#[derive(Debug)]
enum StoreError {
    /// A value clap could not check.
    Usage(String),
    /// `Store::connect` failed.
    Connect(ConnectError),
    /// The command's own database work (or writing its output) failed.
    Failed(String),
    /// `verify` found results that do not match (its report is already printed).
    Mismatch(String),
}

impl StoreError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::Usage(_) => 2,
            Self::Connect(ConnectError::InvalidUrl { .. }) => 3,
            // The file opened for the migrations but not for the claim connection: unreachable too.
            Self::Connect(ConnectError::Unreachable { .. } | ConnectError::Open { .. }) => 4,
            Self::Connect(ConnectError::Rejected { .. }) => 5,
            Self::Connect(ConnectError::Migrate(_)) => 6,
            Self::Mismatch(_) => 7,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(why) | Self::Failed(why) | Self::Mismatch(why) => write!(f, "{why}"),
            Self::Connect(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        Self::Failed(format!("writing the output: {e}"))
    }
}

/// Runs `tasker-ring store ...`: the exit code, after one line on stderr when it failed.
pub fn main(args: StoreArgs) -> ExitCode {
    let outcome = match args.command {
        StoreCommand::Enqueue(a) => enqueue(&a),
        StoreCommand::Status(a) => status(&a),
        StoreCommand::Retry(a) => retry(&a),
        StoreCommand::Verify(a) => verify(&a),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Driver messages (PostgreSQL's DETAIL/HINT) can span lines; the contract is one line.
            let line = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("tasker-ring store: {line}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Connects to the store at `url` on a fresh current-thread runtime and runs `work` on it; the pool is
/// closed after.
fn with_store<T, F, Fut>(url: &str, db: &Database, work: F) -> Result<T, StoreError>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let options = StoreOptions {
            connect_timeout: db.connect_timeout,
            ..StoreOptions::default()
        };
        let store = Store::connect_with(url, options).await.map_err(StoreError::Connect)?;
        let outcome = work(store.clone()).await;
        store.close().await;
        outcome
    })
}

/// The context of each enqueued task: `{"even_number":6}`, padded with a `padding` string to exactly
/// `bytes` when that is at least the 30 bytes of `{"even_number":6,"padding":""}`.
fn context_json(bytes: usize) -> Vec<u8> {
    const BASE: &str = r#"{"even_number":6}"#;
    const PADDED_EMPTY: usize = r#"{"even_number":6,"padding":""}"#.len();
    if bytes < PADDED_EMPTY {
        return BASE.as_bytes().to_vec();
    }
    let padding = "x".repeat(bytes.saturating_sub(PADDED_EMPTY));
    format!(r#"{{"even_number":6,"padding":"{padding}"}}"#).into_bytes()
}

fn enqueue(args: &EnqueueArgs) -> Result<(), StoreError> {
    let template = templates::template(args.template.name())
        .ok_or_else(|| StoreError::Usage(format!("unknown template `{}`", args.template.name())))?;
    let steps_per_task = template.steps.len();
    let roots = template.steps.iter().filter(|s| s.dependencies.is_empty()).count();
    let context = context_json(args.context_bytes);
    let bar = (args.count >= PROGRESS_MIN && io::stderr().is_terminal()).then(|| progress_bar(args.count));
    let shown = bar.clone();
    let url = args.db.url();
    let outcome = with_store(&url, &args.db, |store| async move {
        // The rate is the inserts' alone, not the connect and migrations'.
        let started = Instant::now();
        let mut created = 0usize;
        while created < args.count {
            let n = CHUNK.min(args.count - created);
            store
                .enqueue(&args.namespace, template.short_name, n, &context)
                .await
                .map_err(|e| match e {
                    EnqueueError::UnknownTemplate(_) | EnqueueError::InvalidContext(_) => {
                        StoreError::Usage(e.to_string())
                    }
                    EnqueueError::Database(_) | EnqueueError::Full(_) => {
                        StoreError::Failed(format!("{e} (after {created} of {} tasks were created)", args.count))
                    }
                })?;
            created += n;
            if let Some(bar) = &shown {
                bar.set_position(created as u64);
            }
        }
        Ok((created, started.elapsed()))
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (created, elapsed) = outcome?;
    let secs = elapsed.as_secs_f64();
    let steps = created * steps_per_task;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "enqueued {created} {} tasks ({steps} steps, {} ready) in namespace `{}` into {} in {secs:.2} s: {} tasks/s, {} steps/s",
        template.short_name,
        created * roots,
        args.namespace,
        redact(&url),
        rate(created, secs),
        rate(steps, secs),
    )?;
    Ok(())
}

fn progress_bar(count: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(count as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("enqueue [{bar:40}] {human_pos}/{human_len} tasks ({percent}%), eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn rate(n: usize, secs: f64) -> String {
    if secs > 0.0 {
        format!("{:.0}", n as f64 / secs)
    } else {
        "-".to_string()
    }
}

/// `store status --json`: the shape is this struct (field docs are the documentation).
#[derive(Serialize, Debug)]
struct StatusJson {
    /// Always `tasker-ring/store-status/1`.
    schema: &'static str,
    /// The store URL, any password replaced by `***`.
    database: String,
    /// `sqlite` or `postgres`.
    backend: &'static str,
    tasks: TaskCounts,
    steps: StepCounts,
    /// Age in milliseconds of the oldest claimed step's claim (expired or not); null when nothing is claimed.
    oldest_claim_age_ms: Option<u64>,
}

#[derive(Serialize, Debug)]
struct TaskCounts {
    /// Every task.
    total: u64,
    /// Tasks whose steps are all complete.
    complete: u64,
    /// Tasks with at least one step in error.
    with_error: u64,
}

#[derive(Serialize, Debug)]
struct StepCounts {
    /// Every step (the sum of the states below; `claims_expired` is part of `claimed`).
    total: u64,
    /// Waiting for a parent to complete.
    pending: u64,
    /// Claimable (including steps waiting out a retry backoff).
    ready: u64,
    /// Held by a worker.
    claimed: u64,
    /// Claimed steps whose visibility deadline passed (claimable again).
    claims_expired: u64,
    /// Done.
    complete: u64,
    /// Failed for good (until `store retry`).
    error: u64,
    /// Pending or ready when their task was cancelled (a client's `cancel_task`); never run.
    cancelled: u64,
}

impl StatusJson {
    fn new(url: &str, postgres: bool, s: &StoreStatus) -> Self {
        Self {
            schema: STATUS_SCHEMA,
            database: redact(url),
            backend: if postgres { "postgres" } else { "sqlite" },
            tasks: TaskCounts {
                total: s.tasks,
                complete: s.tasks_complete,
                with_error: s.tasks_error,
            },
            steps: StepCounts {
                total: s.steps(),
                pending: s.pending,
                ready: s.ready,
                claimed: s.claimed,
                claims_expired: s.claims_expired,
                complete: s.complete,
                error: s.error,
                cancelled: s.cancelled,
            },
            oldest_claim_age_ms: s
                .oldest_claim_age
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

fn status(args: &StatusArgs) -> Result<(), StoreError> {
    let url = args.db.url();
    let (postgres, s) = with_store(&url, &args.db, |store| async move {
        let s = store.status().await.map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok((store.is_postgres(), s))
    })?;
    let j = StatusJson::new(&url, postgres, &s);
    let mut out = io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&j).map_err(|e| StoreError::Failed(e.to_string()))?;
        writeln!(out, "{text}")?;
        return Ok(());
    }
    writeln!(out, "store    {} ({})", j.database, j.backend)?;
    writeln!(
        out,
        "tasks    {} total, {} complete, {} with a step in error",
        j.tasks.total, j.tasks.complete, j.tasks.with_error
    )?;
    writeln!(
        out,
        "steps    {} total: {} pending, {} ready, {} claimed ({} expired), {} complete, {} error, {} cancelled",
        j.steps.total,
        j.steps.pending,
        j.steps.ready,
        j.steps.claimed,
        j.steps.claims_expired,
        j.steps.complete,
        j.steps.error,
        j.steps.cancelled
    )?;
    writeln!(
        out,
        "claims   oldest {}",
        crate::inspect::human_age_ms(j.oldest_claim_age_ms)
    )?;
    Ok(())
}

fn retry(args: &RetryArgs) -> Result<(), StoreError> {
    let url = args.db.url();
    let n = with_store(&url, &args.db, |store| async move {
        store
            .retry_errors()
            .await
            .map_err(|e| StoreError::Failed(e.to_string()))
    })?;
    writeln!(
        io::stdout().lock(),
        "retried {n} steps in error of {}: ready again, attempts reset",
        redact(&url)
    )?;
    Ok(())
}

/// `store verify --json`: the shape is this struct (field docs are the documentation).
#[derive(Serialize, Debug)]
struct VerifyJson {
    /// Always `tasker-ring/store-verify/1`.
    schema: &'static str,
    /// The store URL, any password replaced by `***`.
    database: String,
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// Every task.
    tasks: u64,
    /// Tasks whose final step is complete: the ones compared (`mismatches <= checked <= tasks`).
    checked: u64,
    /// Checked tasks whose final value is wrong or could not be compared; exit code 7 when not 0.
    mismatches: u64,
    /// The first 10 mismatches in task UUID order.
    examples: Vec<MismatchJson>,
}

#[derive(Serialize, Debug)]
struct MismatchJson {
    task_uuid: String,
    /// Template short name: `linear` or `diamond`.
    template: String,
    /// The reference math's final value; null without an integer `even_number` in the context, or on overflow.
    expected: Option<i64>,
    /// The final step's `results.result.value`; null when it is not an integer.
    got: Option<i64>,
    /// Why `expected` or `got` is null; null when both are set (and differ).
    reason: Option<String>,
}

impl VerifyJson {
    fn new(url: &str, postgres: bool, r: &VerifyReport) -> Self {
        Self {
            schema: VERIFY_SCHEMA,
            database: redact(url),
            backend: if postgres { "postgres" } else { "sqlite" },
            tasks: r.tasks,
            checked: r.checked,
            mismatches: r.mismatches,
            examples: r
                .examples
                .iter()
                .map(|m| MismatchJson {
                    task_uuid: m.task_uuid.to_string(),
                    template: m.template.clone(),
                    expected: m.expected,
                    got: m.got,
                    reason: m.reason.clone(),
                })
                .collect(),
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<(), StoreError> {
    let url = args.db.url();
    let (postgres, r) = with_store(&url, &args.db, |store| async move {
        let r = store.verify().await.map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok((store.is_postgres(), r))
    })?;
    let j = VerifyJson::new(&url, postgres, &r);
    let mut out = io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&j).map_err(|e| StoreError::Failed(e.to_string()))?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(
            out,
            "verified {} of {} tasks: {} {}",
            j.checked,
            j.tasks,
            j.mismatches,
            if j.mismatches == 1 { "mismatch" } else { "mismatches" }
        )?;
        let value = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        for m in &j.examples {
            write!(
                out,
                "  {} {}: expected {}, got {}",
                m.task_uuid,
                m.template,
                value(m.expected),
                value(m.got)
            )?;
            match &m.reason {
                Some(reason) => writeln!(out, " ({reason})")?,
                None => writeln!(out)?,
            }
        }
        let more = j.mismatches - j.examples.len() as u64;
        if more > 0 {
            writeln!(out, "  ... and {more} more")?;
        }
    }
    out.flush()?;
    if j.mismatches > 0 {
        return Err(StoreError::Mismatch(format!(
            "{} of {} checked tasks do not match the templates' reference math",
            j.mismatches, j.checked
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_padded_to_the_requested_size() {
        assert_eq!(context_json(0), br#"{"even_number":6}"#);
        assert_eq!(context_json(29), br#"{"even_number":6}"#);
        for bytes in [30, 31, 1000, 64 << 10] {
            let c = context_json(bytes);
            assert_eq!(c.len(), bytes);
            let v: serde_json::Value = serde_json::from_slice(&c).unwrap();
            assert_eq!(v["even_number"], 6);
        }
    }

    #[test]
    fn exit_codes_are_distinct() {
        let invalid = ConnectError::InvalidUrl {
            url: "mysql://x".into(),
            reason: "unsupported".into(),
        };
        let codes = [
            StoreError::Failed(String::new()).exit_code(),
            StoreError::Usage(String::new()).exit_code(),
            StoreError::Connect(invalid).exit_code(),
            StoreError::Mismatch(String::new()).exit_code(),
        ];
        assert_eq!(codes, [1, 2, 3, 7]);
    }
}
