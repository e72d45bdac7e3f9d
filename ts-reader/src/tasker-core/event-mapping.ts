/**
 * The step event in tasker-core's camelCase shape (`NapiStepEvent`), made from the snake_case event the
 * worker core writes (the step store's and the synthetic source's carry the same fields).
 *
 * One function, one pass: the only objects it allocates are the output's own (the event, its task,
 * workflow step, step definition and one object per dependency result). Values that are JSON trees
 * (context, inputs, results, checkpoint, handler initialization, tags) are handed over as parsed, not copied.
 * An optional field (`?` in the contract) is omitted when the Rust event has it null or absent, as napi-rs
 * omits a Rust `None`: no key of the output ever holds `undefined`.
 */
import type { FfiStepEvent } from '../protocol.ts';
import type { NapiDependencyResult, NapiStepDefinition, NapiStepEvent, NapiTaskInfo, NapiWorkflowStep } from './types.ts';

// The input is JSON parsed from the ring: its nested fields are read without a type per level.
type Json = any;

/** The contract's `NapiStepEvent` for one step event of the worker core. Throws a `TypeError` when a nested object is missing. */
export function toNapiStepEvent(event: FfiStepEvent): NapiStepEvent {
  const tss: Json = event.task_sequence_step;
  const t: Json = tss.task;
  const w: Json = tss.workflow_step;
  const d: Json = tss.step_definition;
  const h: Json = d.handler;
  const r: Json = d.retry;

  const task: NapiTaskInfo = {
    taskUuid: t.task_uuid,
    namedTaskUuid: t.named_task_uuid,
    name: t.name,
    namespace: t.namespace,
    version: t.version,
    correlationId: t.correlation_id,
    complete: t.complete,
    priority: t.priority,
    identityHash: t.identity_hash,
    createdAt: t.created_at,
    updatedAt: t.updated_at,
  } as NapiTaskInfo;
  if (t.requested_at != null) task.requestedAt = t.requested_at;
  if (t.context != null) task.context = t.context;
  if (t.parent_correlation_id != null) task.parentCorrelationId = t.parent_correlation_id;
  if (t.initiator != null) task.initiator = t.initiator;
  if (t.source_system != null) task.sourceSystem = t.source_system;
  if (t.reason != null) task.reason = t.reason;
  if (t.tags != null) task.tags = t.tags;

  const workflowStep: NapiWorkflowStep = {
    workflowStepUuid: w.workflow_step_uuid,
    taskUuid: w.task_uuid,
    namedStepUuid: w.named_step_uuid,
    name: w.name,
    templateStepName: w.template_step_name,
    retryable: w.retryable,
    maxAttempts: w.max_attempts,
    attempts: w.attempts,
    inProcess: w.in_process,
    processed: w.processed,
    createdAt: w.created_at,
    updatedAt: w.updated_at,
  };
  if (w.inputs != null) workflowStep.inputs = w.inputs;
  if (w.results != null) workflowStep.results = w.results;
  if (w.backoff_request_seconds != null) workflowStep.backoffRequestSeconds = w.backoff_request_seconds;
  if (w.processed_at != null) workflowStep.processedAt = w.processed_at;
  if (w.last_attempted_at != null) workflowStep.lastAttemptedAt = w.last_attempted_at;
  if (w.checkpoint != null) workflowStep.checkpoint = w.checkpoint;

  const stepDefinition: NapiStepDefinition = {
    name: d.name,
    // `handler_class` is the seed's name for the same handler (events of older cores carry only that one).
    handlerCallable: h.callable ?? h.handler_class,
    // tasker-core's template default for an absent initialization: an empty map.
    handlerInitialization: h.initialization ?? {},
    dependencies: d.dependencies,
    retryRetryable: r.retryable,
    retryMaxAttempts: r.max_attempts,
    retryBackoff: r.backoff,
  };
  if (d.description != null) stepDefinition.description = d.description;
  if (h.method != null) stepDefinition.handlerMethod = h.method;
  if (h.resolver != null) stepDefinition.handlerResolver = h.resolver;
  if (d.system_dependency != null) stepDefinition.systemDependency = d.system_dependency;
  if (d.timeout_seconds != null) stepDefinition.timeoutSeconds = d.timeout_seconds;
  if (r.backoff_base_ms != null) stepDefinition.retryBackoffBaseMs = r.backoff_base_ms;
  if (r.max_backoff_ms != null) stepDefinition.retryMaxBackoffMs = r.max_backoff_ms;

  const dependencyResults: Record<string, NapiDependencyResult> = {};
  const parents: Json = tss.dependency_results?.results;
  if (parents != null) {
    for (const name in parents) {
      const p: Json = parents[name];
      const dependency: NapiDependencyResult = { stepUuid: p.step_uuid, success: p.success, result: p.result ?? null, status: p.status };
      const error: Json = p.error;
      if (error != null) {
        if (error.message != null) dependency.errorMessage = error.message;
        if (error.error_type != null) dependency.errorType = error.error_type;
        if (typeof error.retryable === 'boolean') dependency.errorRetryable = error.retryable;
      }
      dependencyResults[name] = dependency;
    }
  }

  const out: NapiStepEvent = {
    eventId: event.event_id,
    taskUuid: event.task_uuid,
    stepUuid: event.step_uuid,
    correlationId: event.correlation_id as string,
    taskCorrelationId: event.task_correlation_id as string,
    task,
    workflowStep,
    stepDefinition,
    dependencyResults,
  };
  if (event.trace_id != null) out.traceId = event.trace_id as string;
  if (event.span_id != null) out.spanId = event.span_id as string;
  if (event.parent_correlation_id != null) out.parentCorrelationId = event.parent_correlation_id as string;
  return out;
}
