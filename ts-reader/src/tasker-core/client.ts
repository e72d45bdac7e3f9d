/**
 * tasker-core's `client*` calls over the library's `client_call` (the step store's client operations):
 * camelCase requests become the snake_case `{"op","args"}` the library takes; its answer comes back as
 * `NapiClientResult`. `data` is handed over as the library sends it: snake_case, as tasker-core's own client
 * data is (its `TaskResponse`, `StepResponse`, ... keep serde's field names). A failure of any kind (the
 * store's, a malformed id, a library without `client_call`, an unreadable answer) is
 * `{ success: false, error, recoverable }`, never a throw.
 */
import type { NapiClientResult, NapiListTasksParams, NapiTaskRequest } from './types.ts';

/** Sends one request JSON, returns the library's JSON answer (null: the library has no `client_call`). */
export type ClientTransport = (requestJson: string) => string | null;

export type ClientOp = 'create_task' | 'get_task' | 'list_tasks' | 'cancel_task' | 'list_task_steps' | 'get_step' | 'step_audit_history' | 'health';

/** One client call: never throws. */
export function clientCall(send: () => ClientTransport, op: ClientOp, args: Record<string, unknown>): NapiClientResult {
  let answer: string | null;
  try {
    answer = send()(JSON.stringify({ op, args }));
  } catch (error) {
    return { success: false, error: `${op}: ${(error as Error).message}`, recoverable: false };
  }
  if (answer === null) {
    return { success: false, error: `${op}: this libtasker_worker has no client_call (upgrade it)`, recoverable: false };
  }
  let parsed: { success?: unknown; data?: unknown; error?: unknown; recoverable?: unknown };
  try {
    parsed = JSON.parse(answer);
  } catch {
    return { success: false, error: `${op}: the library answered with invalid JSON: ${answer.slice(0, 120)}`, recoverable: false };
  }
  if (parsed?.success === true) return 'data' in parsed ? { success: true, data: parsed.data } : { success: true };
  return {
    success: false,
    error: typeof parsed?.error === 'string' ? parsed.error : `${op} failed: ${answer.slice(0, 120)}`,
    recoverable: parsed?.recoverable === true,
  };
}

/** `create_task`'s args: the request in snake_case (absent optional fields stay absent). */
export function createTaskArgs(request: NapiTaskRequest): Record<string, unknown> {
  return {
    name: request.name,
    namespace: request.namespace,
    version: request.version,
    context: request.context,
    initiator: request.initiator,
    source_system: request.sourceSystem,
    reason: request.reason,
    tags: request.tags,
    priority: request.priority,
    correlation_id: request.correlationId,
    parent_correlation_id: request.parentCorrelationId,
    idempotency_key: request.idempotencyKey,
  };
}

/** `list_tasks`'s args, with tasker-core's defaults (limit 50, offset 0). */
export function listTasksArgs(params: NapiListTasksParams | undefined): Record<string, unknown> {
  return { limit: params?.limit ?? 50, offset: params?.offset ?? 0, namespace: params?.namespace, status: params?.status };
}
