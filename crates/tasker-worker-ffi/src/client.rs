//! `client_call`: tasker-core's client calls over the step store, JSON in and JSON out, never a panic or a
//! throw across the boundary.
//!
//! Request `{"op": "<op>", "args": {...}}`; answer `{"success": true, "data": ...}` or
//! `{"success": false, "error": "<message>", "recoverable": <bool>}` (recoverable: a store outage, or no store
//! known yet; not recoverable: a malformed request, an unknown op or template, a task that does not exist).
//!
//! The store: `args.database_url` when given, else the one the last successful `bootstrap_worker` resolved
//! (its `database_url`, `TASKER_DATABASE_URL`, else `tasker.db`; none for a synthetic worker: not
//! recoverable). It is opened as the client's own small pool
//! on the client's own runtime (two threads), off the worker's hot path, once per URL and kept; a failed
//! open is retried by the next call.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tasker_store::{
    redact, registry, CancelOutcome, NewTask, Recoverable, Store, StoreOptions, TaskFilter, TaskStatus, Uuid,
};

/// How long one call waits to reach a store it has not opened yet.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections of the client's pool per store.
const POOL_SIZE: u32 = 2;

/// The ops, as named in the error for an unknown one.
const OPS: &[&str] = &[
    "create_task",
    "get_task",
    "list_tasks",
    "cancel_task",
    "list_task_steps",
    "get_step",
    "step_audit_history",
    "health",
    "register_template",
];

/// What the last successful bootstrap said about the step store.
#[derive(Clone, Debug, PartialEq, Eq)]
enum WorkerStore {
    /// No worker was bootstrapped in this process yet.
    None,
    /// The worker reads this store.
    Url(String),
    /// The worker's events are synthetic: it reads no store.
    Synthetic,
}

struct State {
    worker: WorkerStore,
    /// Opened stores by URL.
    stores: BTreeMap<String, Store>,
}

static STATE: Mutex<State> = Mutex::new(State {
    worker: WorkerStore::None,
    stores: BTreeMap::new(),
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The client's runtime (built once; two worker threads run the pools' I/O).
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("tasker-client")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the client's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Records the store of a worker just bootstrapped (`None`: the synthetic source).
pub(crate) fn worker_bootstrapped(store_url: Option<String>) {
    state().worker = match store_url {
        Some(url) => WorkerStore::Url(url),
        None => WorkerStore::Synthetic,
    };
}

/// Registers the templates of `path` (a bootstrap's `templates_path`, else a non-empty
/// `TASKER_TEMPLATE_PATH`); returns how many, or why not.
pub(crate) fn load_templates(path: Option<PathBuf>) -> Result<usize, String> {
    let path = path.or_else(|| {
        std::env::var_os("TASKER_TEMPLATE_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    match path {
        Some(path) => registry::register_path(&path)
            .map(|t| t.len())
            .map_err(|e| e.to_string()),
        None => Ok(0),
    }
}

/// A failed call's answer.
struct Failure {
    error: String,
    recoverable: bool,
}

impl Failure {
    fn fatal(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            recoverable: false,
        }
    }

    fn of<E: Recoverable + std::fmt::Display>(e: E) -> Self {
        Self {
            recoverable: e.recoverable(),
            error: e.to_string(),
        }
    }
}

type Answer = Result<Value, Failure>;

/// The answer to `request` (the text of a `client_call`), as JSON.
pub(crate) fn call(request: &str) -> Value {
    match dispatch(request) {
        Ok(data) => json!({ "success": true, "data": data }),
        Err(f) => json!({ "success": false, "error": f.error, "recoverable": f.recoverable }),
    }
}

/// A request's parts.
struct Request {
    op: String,
    /// Its arguments, without `database_url`.
    args: Map<String, Value>,
    /// `args.database_url`.
    url: Option<String>,
}

/// The request's parts.
fn parse(request: &str) -> Result<Request, Failure> {
    let v: Value =
        serde_json::from_str(request).map_err(|e| Failure::fatal(format!("the request is not JSON: {e}")))?;
    let Value::Object(mut request) = v else {
        return Err(Failure::fatal("the request is not a JSON object {\"op\", \"args\"}"));
    };
    let op = match request.remove("op") {
        Some(Value::String(op)) => op,
        _ => return Err(Failure::fatal("the request has no string `op`")),
    };
    let mut args = match request.remove("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => args,
        Some(_) => return Err(Failure::fatal("`args` is not a JSON object")),
    };
    if let Some(extra) = request.keys().next() {
        return Err(Failure::fatal(format!(
            "unknown request field `{extra}` (a request has `op` and `args`)"
        )));
    }
    let url = match args.remove("database_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) if !url.trim().is_empty() => Some(url),
        Some(_) => return Err(Failure::fatal("`database_url` is not a non-empty string")),
    };
    Ok(Request { op, args, url })
}

/// The op's arguments as `T` (unknown fields refused).
fn args_as<T: for<'de> Deserialize<'de>>(op: &str, args: Map<String, Value>) -> Result<T, Failure> {
    serde_json::from_value(Value::Object(args)).map_err(|e| Failure::fatal(format!("{op}: bad args: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskArgs {
    task_uuid: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepArgs {
    task_uuid: Uuid,
    step_uuid: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    limit: Option<u32>,
    offset: Option<u64>,
    namespace: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterArgs {
    /// A template file, or a directory of them.
    path: Option<PathBuf>,
    /// A template definition as JSON.
    template: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

fn dispatch(request: &str) -> Answer {
    let Request { op, args, url } = parse(request)?;
    match op.as_str() {
        // Needs no store.
        "register_template" => register_template(args_as(&op, args)?),
        "health" => {
            args_as::<NoArgs>(&op, args)?;
            health(url)
        }
        "create_task" => {
            let req: NewTask = args_as(&op, args)?;
            with_store(url, |s| async move {
                s.create_task(&req).await.map(json_of).map_err(Failure::of)
            })
        }
        "get_task" => {
            let a: TaskArgs = args_as(&op, args)?;
            with_store(url, |s| async move {
                found(s.get_task(a.task_uuid).await.map_err(Failure::of)?, || {
                    no_task(a.task_uuid)
                })
            })
        }
        "list_tasks" => {
            let a: ListArgs = args_as(&op, args)?;
            let status = a
                .status
                .map(|s| s.parse::<TaskStatus>())
                .transpose()
                .map_err(|e| Failure::fatal(format!("list_tasks: {e}")))?;
            let filter = TaskFilter {
                limit: a.limit.unwrap_or(TaskFilter::default().limit),
                offset: a.offset.unwrap_or(0),
                namespace: a.namespace,
                status,
            };
            with_store(url, |s| async move {
                s.list_tasks(&filter).await.map(json_of).map_err(Failure::of)
            })
        }
        "cancel_task" => {
            let a: TaskArgs = args_as(&op, args)?;
            with_store(url, |s| async move { cancel(&s, a.task_uuid).await })
        }
        "list_task_steps" => {
            let a: TaskArgs = args_as(&op, args)?;
            with_store(url, |s| async move {
                found(s.task_steps(a.task_uuid).await.map_err(Failure::of)?, || {
                    no_task(a.task_uuid)
                })
            })
        }
        "get_step" => {
            let a: StepArgs = args_as(&op, args)?;
            with_store(url, |s| async move {
                let step = s.get_step(a.task_uuid, a.step_uuid).await.map_err(Failure::of)?;
                found(step, || no_step(&a))
            })
        }
        "step_audit_history" => {
            let a: StepArgs = args_as(&op, args)?;
            with_store(url, |s| async move {
                let history = s.step_history(a.task_uuid, a.step_uuid).await.map_err(|e| Failure {
                    recoverable: matches!(&e, tasker_store::StatusError::Database(d) if tasker_store::is_outage(d)),
                    error: e.to_string(),
                })?;
                let history = history.ok_or_else(|| Failure::fatal(no_step(&a)))?;
                Ok(Value::Array(history.iter().map(|r| r.to_json()).collect()))
            })
        }
        other => Err(Failure::fatal(format!(
            "unknown op `{other}` (ops: {})",
            OPS.join(", ")
        ))),
    }
}

fn json_of<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "serialization_error": e.to_string() }))
}

fn found<T: serde::Serialize>(v: Option<T>, missing: impl FnOnce() -> String) -> Answer {
    v.map(json_of).ok_or_else(|| Failure::fatal(missing()))
}

fn no_task(task_uuid: Uuid) -> String {
    format!("no task {task_uuid}")
}

fn no_step(a: &StepArgs) -> String {
    format!("task {} has no step {}", a.task_uuid, a.step_uuid)
}

async fn cancel(s: &Store, task_uuid: Uuid) -> Answer {
    match s.cancel_task(task_uuid).await.map_err(Failure::of)? {
        CancelOutcome::NotFound => Err(Failure::fatal(no_task(task_uuid))),
        CancelOutcome::AlreadyComplete => Err(Failure::fatal(format!(
            "task {task_uuid} is complete: nothing to cancel"
        ))),
        CancelOutcome::Cancelled {
            steps_cancelled,
            still_running,
        } => {
            let task = s.get_task(task_uuid).await.map_err(Failure::of)?;
            Ok(json!({ "steps_cancelled": steps_cancelled, "still_running": still_running, "task": task }))
        }
    }
}

fn register_template(a: RegisterArgs) -> Answer {
    let templates = match (a.path, a.template) {
        (Some(path), None) => registry::register_path(&path),
        (None, Some(template)) => serde_json::from_value(template)
            .map_err(|e| registry::TemplateError::Parse {
                origin: "`template`".into(),
                message: e.to_string(),
            })
            .and_then(registry::register)
            .map(|t| vec![t]),
        _ => {
            return Err(Failure::fatal(
                "register_template: give exactly one of `path` and `template`",
            ))
        }
    };
    let templates = templates.map_err(|e| Failure::fatal(format!("register_template: {e}")))?;
    Ok(json!({
        "templates": templates.iter().map(|t| json!({
            "name": t.name,
            "namespace": t.namespace,
            "version": t.version,
            "steps": t.steps.iter().map(|s| s.name).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    }))
}

/// The store's health; an unreachable store is a successful answer saying so (`healthy: false`).
fn health(url: Option<String>) -> Answer {
    let url = store_url(url)?;
    let rt = runtime().map_err(|e| Failure {
        error: e,
        recoverable: true,
    })?;
    let redacted = redact(&url);
    rt.block_on(async move {
        let checked = match open(&url).await {
            Ok(store) => store.health().await.map_err(Failure::of),
            Err(f) => Err(f),
        };
        Ok(match checked {
            Ok(h) => json!({
                "healthy": true, "store_reachable": true, "database_url": redacted, "backend": h.backend,
                "schema_version": h.schema_version, "tasks": h.tasks, "steps": h.steps,
            }),
            Err(f) => json!({
                "healthy": false, "store_reachable": false, "database_url": redacted, "error": f.error,
                "recoverable": f.recoverable,
            }),
        })
    })
}

/// The URL a call uses: its own, else the bootstrapped worker's.
fn store_url(url: Option<String>) -> Result<String, Failure> {
    if let Some(url) = url {
        return Ok(url);
    }
    match &state().worker {
        WorkerStore::Url(url) => Ok(url.clone()),
        WorkerStore::None => Err(Failure {
            error: "no worker is bootstrapped in this process, so no step store is known: bootstrap one, or pass \
                    `database_url` in args"
                .into(),
            recoverable: true,
        }),
        WorkerStore::Synthetic => Err(Failure::fatal(
            "the bootstrapped worker's events are synthetic: it reads no step store; pass `database_url` in args",
        )),
    }
}

/// The store at `url`: the one opened before, else a new pool (kept when it opens).
async fn open(url: &str) -> Result<Store, Failure> {
    if let Some(store) = state().stores.get(url) {
        return Ok(store.clone());
    }
    let options = StoreOptions {
        connect_timeout: CONNECT_TIMEOUT,
        max_connections: Some(POOL_SIZE),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(url, options).await.map_err(Failure::of)?;
    // Another call may have opened it meanwhile: keep the first, close ours.
    let kept = state()
        .stores
        .entry(url.to_string())
        .or_insert_with(|| store.clone())
        .clone();
    Ok(kept)
}

/// Runs `op` on the call's store, on the client's runtime.
fn with_store<F, Fut>(url: Option<String>, op: F) -> Answer
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let url = store_url(url)?;
    let rt = runtime().map_err(|e| Failure {
        error: e,
        recoverable: true,
    })?;
    rt.block_on(async move { op(open(&url).await?).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(request: &str) -> (String, bool) {
        let answer = call(request);
        assert_eq!(answer["success"], false, "{answer}");
        (
            answer["error"].as_str().unwrap().to_string(),
            answer["recoverable"].as_bool().unwrap(),
        )
    }

    #[test]
    fn malformed_requests_are_not_recoverable() {
        for (request, why) in [
            ("{", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"args":{}}"#, "no string `op`"),
            (r#"{"op":"get_task","args":[1]}"#, "`args` is not a JSON object"),
            (r#"{"op":"get_task","argz":{}}"#, "unknown request field `argz`"),
            (r#"{"op":"get_task","args":{"database_url":7}}"#, "`database_url`"),
            (
                r#"{"op":"get_task","args":{"task_uuid":"nope","database_url":"x.db"}}"#,
                "get_task: bad args",
            ),
            (
                r#"{"op":"get_task","args":{"task_uuid":"0190d2b2-7a5c-7a3e-9b1e-1c2d3e4f5a6b","x":1}}"#,
                "unknown field",
            ),
            (
                r#"{"op":"list_tasks","args":{"status":"done","database_url":"x.db"}}"#,
                "unknown task status `done`",
            ),
            (r#"{"op":"fly","args":{}}"#, "unknown op `fly` (ops: create_task"),
            (
                r#"{"op":"register_template","args":{}}"#,
                "exactly one of `path` and `template`",
            ),
        ] {
            let (error, recoverable) = fails(request);
            assert!(error.contains(why), "{request}: {error}");
            assert!(!recoverable, "{request}");
        }
    }
}
