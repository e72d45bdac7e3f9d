/**
 * tasker-core's result and checkpoint objects (camelCase) in the snake_case JSON the worker core and the
 * step store take: tasker-core's own `StepExecutionResult` serialisation, with the defaults its napi
 * bridge applies (`metadata.retryable` true, `error.retryable` false when absent; `execution_time_ms` an
 * integer). Ids are checked as tasker-core checks them: anything its UUID parser refuses is an
 * `FfiCallError('INVALID_ARGUMENT')`.
 */
import { FfiCallError } from '../errors.ts';
import type { StepCheckpoint } from '../protocol.ts';
import { isCanonicalEventId } from '../ring/writer.ts';
import type { NapiCheckpointYieldData, NapiStepExecutionResult } from './types.ts';

/** What the `uuid` crate's `Uuid::parse_str` takes: hyphenated, simple, braced or URN; hex of any case. */
const UUID_FORMS =
  /^(?:urn:uuid:)?(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\})$/i;

/**
 * Throws `FfiCallError('INVALID_ARGUMENT')` (message as tasker-core's: `Invalid argument: Invalid <what>: ...`)
 * unless `value` is a UUID in a form tasker-core accepts. The canonical form (every id this worker hands
 * out) is checked without a regular expression.
 */
export function requireUuid(value: unknown, what: string): void {
  if (isCanonicalEventId(value as string)) return;
  if (typeof value === 'string' && UUID_FORMS.test(value)) return;
  throw new FfiCallError(`Invalid argument: Invalid ${what}: ${JSON.stringify(value)} is not a UUID`, undefined, 'INVALID_ARGUMENT');
}

/** The completion JSON of `result` (tasker-core's `StepExecutionResult`, snake_case). */
export function completionJson(result: NapiStepExecutionResult): string {
  const m = result.metadata ?? {};
  const e = result.error;
  return JSON.stringify({
    step_uuid: result.stepUuid,
    success: result.success,
    result: result.result ?? null,
    status: result.status,
    metadata: {
      execution_time_ms: Math.trunc(m.executionTimeMs ?? 0),
      worker_id: m.workerId,
      completed_at: m.completedAt,
      retryable: m.retryable ?? true,
      error_type: m.errorType,
      error_code: m.errorCode,
      custom: m.custom,
    },
    error:
      e == null
        ? undefined
        : {
            message: e.message,
            error_type: e.errorType,
            retryable: e.retryable ?? false,
            status_code: e.statusCode,
            backtrace: e.backtrace,
            context: e.context,
          },
    orchestration_metadata: result.orchestrationMetadata,
  });
}

/**
 * The checkpoint the store keeps (snake_case, as tasker-core's `CheckpointYieldData`): `accumulated_results`
 * only when it is a JSON object, as tasker-core's bridge keeps it.
 */
export function stepCheckpoint(data: NapiCheckpointYieldData): StepCheckpoint {
  const checkpoint: StepCheckpoint = { step_uuid: data.stepUuid, cursor: data.cursor ?? null, items_processed: data.itemsProcessed };
  const accumulated = data.accumulatedResults;
  if (typeof accumulated === 'object' && accumulated !== null && !Array.isArray(accumulated)) checkpoint.accumulated_results = accumulated;
  return checkpoint;
}
