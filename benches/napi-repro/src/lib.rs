//! A reproduction of tasker-core's napi-rs step-event path, for `crates/tasker-worker-ffi/benches/js_consumer.rs`.
//!
//! tasker-core's TypeScript worker module (napi-rs) answers each `pollStepEvents()` by locking a global
//! mutex that holds its bridge, taking a typed Rust event out of its dispatch channel (a clone of the
//! dispatched message), converting it field by field into `#[napi(object)]` structs (camelCase in JS) and
//! returning them, which napi-rs turns into a JS object one property at a time (JSON trees such as the
//! task's context through its `serde-json` feature). This addon does the same per poll:
//!
//! 1. lock [`BRIDGE`], a global `std::sync::Mutex`;
//! 2. clone the held [`HeldEvent`] (deserialized once, by `loadEvent(json)`, from the bench's fixture);
//! 3. convert the clone into [`NapiStepEvent`] (strings and JSON values cloned again, the retry backoff
//!    formatted, the handler's initialization map copied into a JSON value);
//! 4. return it: napi-rs builds the JS object.
//!
//! Left out, so the figure is a lower bound of theirs: the dispatch channel's own lock and receive, the
//! second clone kept in their pending-events map, UUIDs and timestamps formatted from typed values (held
//! here as strings), and tracing.

use std::collections::HashMap;
use std::sync::Mutex;

use napi::bindgen_prelude::{Error, Result};
use napi_derive::napi;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The bridge every call locks: the event `pollStepEvents()` hands out, once `loadEvent()` stored it.
static BRIDGE: Mutex<Option<HeldEvent>> = Mutex::new(None);

// ---- the held event: a typed Rust step event, as the worker core keeps it ------------------------------

/// One step event in the worker core's snake_case shape (`fixtures/step-event.json`).
#[derive(Clone, Debug, Deserialize)]
pub struct HeldEvent {
    event_id: String,
    task_uuid: String,
    step_uuid: String,
    correlation_id: String,
    trace_id: Option<String>,
    span_id: Option<String>,
    task_correlation_id: String,
    parent_correlation_id: Option<String>,
    task_sequence_step: HeldSequenceStep,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldSequenceStep {
    task: HeldTask,
    workflow_step: HeldWorkflowStep,
    step_definition: HeldStepDefinition,
    dependency_results: HeldDependencyResults,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldTask {
    task_uuid: String,
    named_task_uuid: String,
    name: String,
    namespace: String,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    namespace_name: String,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    template_name: String,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    status: String,
    version: String,
    context: Option<Value>,
    correlation_id: String,
    parent_correlation_id: Option<String>,
    complete: bool,
    priority: i32,
    initiator: Option<String>,
    source_system: Option<String>,
    reason: Option<String>,
    tags: Option<Value>,
    identity_hash: String,
    created_at: String,
    updated_at: String,
    requested_at: String,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldWorkflowStep {
    workflow_step_uuid: String,
    task_uuid: String,
    named_step_uuid: String,
    name: String,
    template_step_name: String,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    state: String,
    retryable: bool,
    max_attempts: Option<i32>,
    attempts: Option<i32>,
    in_process: bool,
    processed: bool,
    inputs: Option<Value>,
    results: Option<Value>,
    backoff_request_seconds: Option<i32>,
    processed_at: Option<String>,
    last_attempted_at: Option<String>,
    created_at: String,
    updated_at: String,
    checkpoint: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldStepDefinition {
    name: String,
    description: Option<String>,
    handler: HeldHandler,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    #[serde(rename = "type")]
    kind: String,
    system_dependency: Option<String>,
    dependencies: Vec<String>,
    retry: HeldRetry,
    timeout_seconds: Option<u32>,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    publishes_events: Vec<Value>,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldHandler {
    callable: String,
    method: Option<String>,
    resolver: Option<String>,
    initialization: Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldRetry {
    retryable: bool,
    max_attempts: u32,
    backoff: Backoff,
    backoff_base_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
}

/// The retry backoff as an enum (formatted back into its lowercase name per event).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Backoff {
    None,
    Linear,
    Exponential,
    Fixed,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldDependencyResults {
    results: HashMap<String, HeldDependencyResult>,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldDependencyResult {
    step_uuid: String,
    success: bool,
    result: Value,
    status: String,
    #[expect(dead_code, reason = "cloned with the event, not converted")]
    metadata: Option<Value>,
    error: Option<HeldStepError>,
}

#[derive(Clone, Debug, Deserialize)]
struct HeldStepError {
    message: String,
    error_type: Option<String>,
    retryable: bool,
}

// ---- the JS shapes (napi-rs: snake_case fields become camelCase properties, None is omitted) -----------

/// tasker-core's `NapiStepEvent`.
#[napi(object)]
pub struct NapiStepEvent {
    pub event_id: String,
    pub task_uuid: String,
    pub step_uuid: String,
    pub correlation_id: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub task_correlation_id: String,
    pub parent_correlation_id: Option<String>,
    pub task: NapiTaskInfo,
    pub workflow_step: NapiWorkflowStep,
    pub step_definition: NapiStepDefinition,
    pub dependency_results: HashMap<String, NapiDependencyResult>,
}

/// tasker-core's `NapiTaskInfo`.
#[napi(object)]
pub struct NapiTaskInfo {
    pub task_uuid: String,
    pub named_task_uuid: String,
    pub name: String,
    pub namespace: String,
    pub version: String,
    pub context: Option<Value>,
    pub correlation_id: String,
    pub parent_correlation_id: Option<String>,
    pub complete: bool,
    pub priority: i32,
    pub initiator: Option<String>,
    pub source_system: Option<String>,
    pub reason: Option<String>,
    pub tags: Option<Value>,
    pub identity_hash: String,
    pub created_at: String,
    pub updated_at: String,
    pub requested_at: String,
}

/// tasker-core's `NapiWorkflowStep`.
#[napi(object)]
pub struct NapiWorkflowStep {
    pub workflow_step_uuid: String,
    pub task_uuid: String,
    pub named_step_uuid: String,
    pub name: String,
    pub template_step_name: String,
    pub retryable: bool,
    pub max_attempts: i32,
    pub attempts: i32,
    pub in_process: bool,
    pub processed: bool,
    pub inputs: Option<Value>,
    pub results: Option<Value>,
    pub backoff_request_seconds: Option<i32>,
    pub processed_at: Option<String>,
    pub last_attempted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub checkpoint: Option<Value>,
}

/// tasker-core's `NapiStepDefinition`.
#[napi(object)]
pub struct NapiStepDefinition {
    pub name: String,
    pub description: Option<String>,
    pub handler_callable: String,
    pub handler_method: Option<String>,
    pub handler_resolver: Option<String>,
    pub handler_initialization: Value,
    pub system_dependency: Option<String>,
    pub dependencies: Vec<String>,
    pub timeout_seconds: Option<i64>,
    pub retry_retryable: bool,
    pub retry_max_attempts: u32,
    pub retry_backoff: String,
    pub retry_backoff_base_ms: Option<i64>,
    pub retry_max_backoff_ms: Option<i64>,
}

/// tasker-core's `NapiDependencyResult`.
#[napi(object)]
pub struct NapiDependencyResult {
    pub step_uuid: String,
    pub success: bool,
    pub result: Value,
    pub status: String,
    pub error_message: Option<String>,
    pub error_type: Option<String>,
    pub error_retryable: Option<bool>,
}

// ---- conversion ------------------------------------------------------------------------------------------

impl Backoff {
    fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

impl From<&HeldEvent> for NapiStepEvent {
    fn from(event: &HeldEvent) -> Self {
        let tss = &event.task_sequence_step;
        NapiStepEvent {
            event_id: event.event_id.clone(),
            task_uuid: event.task_uuid.clone(),
            step_uuid: event.step_uuid.clone(),
            correlation_id: event.correlation_id.clone(),
            trace_id: event.trace_id.clone(),
            span_id: event.span_id.clone(),
            task_correlation_id: event.task_correlation_id.clone(),
            parent_correlation_id: event.parent_correlation_id.clone(),
            task: (&tss.task).into(),
            workflow_step: (&tss.workflow_step).into(),
            step_definition: (&tss.step_definition).into(),
            dependency_results: tss
                .dependency_results
                .results
                .iter()
                .map(|(name, parent)| (name.clone(), parent.into()))
                .collect(),
        }
    }
}

impl From<&HeldTask> for NapiTaskInfo {
    fn from(t: &HeldTask) -> Self {
        NapiTaskInfo {
            task_uuid: t.task_uuid.clone(),
            named_task_uuid: t.named_task_uuid.clone(),
            name: t.name.clone(),
            namespace: t.namespace.clone(),
            version: t.version.clone(),
            context: t.context.clone(),
            correlation_id: t.correlation_id.clone(),
            parent_correlation_id: t.parent_correlation_id.clone(),
            complete: t.complete,
            priority: t.priority,
            initiator: t.initiator.clone(),
            source_system: t.source_system.clone(),
            reason: t.reason.clone(),
            tags: t.tags.clone(),
            identity_hash: t.identity_hash.clone(),
            created_at: t.created_at.clone(),
            updated_at: t.updated_at.clone(),
            requested_at: t.requested_at.clone(),
        }
    }
}

impl From<&HeldWorkflowStep> for NapiWorkflowStep {
    fn from(w: &HeldWorkflowStep) -> Self {
        NapiWorkflowStep {
            workflow_step_uuid: w.workflow_step_uuid.clone(),
            task_uuid: w.task_uuid.clone(),
            named_step_uuid: w.named_step_uuid.clone(),
            name: w.name.clone(),
            template_step_name: w.template_step_name.clone(),
            retryable: w.retryable,
            max_attempts: w.max_attempts.unwrap_or(3),
            attempts: w.attempts.unwrap_or(0),
            in_process: w.in_process,
            processed: w.processed,
            inputs: w.inputs.clone(),
            results: w.results.clone(),
            backoff_request_seconds: w.backoff_request_seconds,
            processed_at: w.processed_at.clone(),
            last_attempted_at: w.last_attempted_at.clone(),
            created_at: w.created_at.clone(),
            updated_at: w.updated_at.clone(),
            checkpoint: w.checkpoint.clone(),
        }
    }
}

impl From<&HeldStepDefinition> for NapiStepDefinition {
    fn from(d: &HeldStepDefinition) -> Self {
        NapiStepDefinition {
            name: d.name.clone(),
            description: d.description.clone(),
            handler_callable: d.handler.callable.clone(),
            handler_method: d.handler.method.clone(),
            handler_resolver: d.handler.resolver.clone(),
            handler_initialization: Value::Object(d.handler.initialization.clone()),
            system_dependency: d.system_dependency.clone(),
            dependencies: d.dependencies.clone(),
            timeout_seconds: d.timeout_seconds.map(i64::from),
            retry_retryable: d.retry.retryable,
            retry_max_attempts: d.retry.max_attempts,
            retry_backoff: d.retry.backoff.name(),
            retry_backoff_base_ms: d.retry.backoff_base_ms.map(|ms| ms as i64),
            retry_max_backoff_ms: d.retry.max_backoff_ms.map(|ms| ms as i64),
        }
    }
}

impl From<&HeldDependencyResult> for NapiDependencyResult {
    fn from(p: &HeldDependencyResult) -> Self {
        NapiDependencyResult {
            step_uuid: p.step_uuid.clone(),
            success: p.success,
            result: p.result.clone(),
            status: p.status.clone(),
            error_message: p.error.as_ref().map(|e| e.message.clone()),
            error_type: p.error.as_ref().and_then(|e| e.error_type.clone()),
            error_retryable: p.error.as_ref().map(|e| e.retryable),
        }
    }
}

// ---- the module's functions ------------------------------------------------------------------------------

fn lock_error() -> Error {
    Error::from_reason("the bridge mutex is poisoned")
}

/// Deserializes `json` (a step event in the worker core's shape) into the event every later poll hands out,
/// replacing any held before. Throws when it is not one.
#[napi]
pub fn load_event(json: String) -> Result<()> {
    let event: HeldEvent =
        serde_json::from_str(&json).map_err(|e| Error::from_reason(format!("not a step event: {e}")))?;
    *BRIDGE.lock().map_err(|_| lock_error())? = Some(event);
    Ok(())
}

/// The held event as tasker-core's `NapiStepEvent`: the bridge locked, the event cloned and converted, the JS
/// object built by napi-rs. Null when no event was loaded.
#[napi]
pub fn poll_step_events() -> Result<Option<NapiStepEvent>> {
    let bridge = BRIDGE.lock().map_err(|_| lock_error())?;
    Ok(bridge.as_ref().map(|held| {
        // The dispatched message cloned into the event handed out, then converted (tasker-core: the
        // channel's `FfiStepEvent::from_dispatch_message`, then `convert_step_event`).
        let event = held.clone();
        NapiStepEvent::from(&event)
    }))
}
