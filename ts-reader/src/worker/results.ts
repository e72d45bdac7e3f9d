/** Building tasker-core `StepExecutionResult`s from handler outcomes. */
import type { FfiStepEvent, StepExecutionResult } from '../protocol.ts';

export interface OutcomeMetadata {
  handler: string | null;
  execution_time_ms: number;
  worker_runtime: string;
  attempts: number;
}

export function successResult(event: FfiStepEvent, value: unknown, metadata: OutcomeMetadata): StepExecutionResult {
  return {
    step_uuid: event.step_uuid,
    success: true,
    result: value === undefined ? {} : value,
    status: 'completed',
    metadata: { ...metadata },
    error: null,
  };
}

export function failureResult(
  event: FfiStepEvent,
  failure: { message: string; errorType: string; retryable: boolean; backtrace?: string[] },
  metadata: OutcomeMetadata,
): StepExecutionResult {
  return {
    step_uuid: event.step_uuid,
    success: false,
    result: null,
    status: 'error',
    metadata: { ...metadata },
    error: {
      message: failure.message,
      error_type: failure.errorType,
      retryable: failure.retryable,
      backtrace: failure.backtrace ?? [],
      status_code: null,
    },
  };
}

/** A thrown value as a failure: message, type, backtrace, and `retryable` (default true). */
export function describeThrown(error: unknown): { message: string; errorType: string; retryable: boolean; backtrace: string[] } {
  if (error instanceof Error) {
    const retryable = (error as { retryable?: unknown }).retryable;
    return {
      message: error.message || String(error),
      errorType: error.name || error.constructor?.name || 'Error',
      retryable: typeof retryable === 'boolean' ? retryable : true,
      backtrace: (error.stack ?? '')
        .split('\n')
        .slice(1)
        .map((line) => line.trim())
        .filter(Boolean)
        .slice(0, 50),
    };
  }
  return { message: String(error), errorType: typeof error, retryable: true, backtrace: [] };
}

/** The handler name of an event: `handler_class` (the seed's), else tasker-core's `callable`. */
export function handlerName(event: FfiStepEvent): string | null {
  const handler = event.task_sequence_step?.step_definition?.handler;
  if (!handler) return null;
  return handler.handler_class || handler.callable || null;
}
