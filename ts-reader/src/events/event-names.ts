/**
 * Standard event names: the seed's (Ruby and Python workers) plus tasker-core's TypeScript worker's.
 */
export const EventNames = {
  // The seed's names.
  STEP_EXECUTION_RECEIVED: 'step.execution.received',
  STEP_COMPLETION_SENT: 'step.completion.sent',
  HANDLER_REGISTERED: 'handler.registered',
  HANDLER_ERROR: 'handler.error',
  POLLER_METRICS: 'poller.metrics',
  POLLER_ERROR: 'poller.error',
  WORKER_STARTED: 'worker.started',
  WORKER_STOPPED: 'worker.stopped',
  // tasker-core's.
  STEP_EXECUTION_STARTED: 'step.execution.started',
  STEP_EXECUTION_COMPLETED: 'step.execution.completed',
  STEP_EXECUTION_FAILED: 'step.execution.failed',
  STEP_EXECUTION_TIMEOUT: 'step.execution.timeout',
  WORKER_READY: 'worker.ready',
  WORKER_SHUTDOWN_STARTED: 'worker.shutdown.started',
  WORKER_ERROR: 'worker.error',
  POLLER_STARTED: 'poller.started',
  POLLER_STOPPED: 'poller.stopped',
  POLLER_CYCLE_COMPLETE: 'poller.cycle.complete',
  POLLER_STARVATION_DETECTED: 'poller.starvation.detected',
  METRICS_UPDATED: 'metrics.updated',
  METRICS_ERROR: 'metrics.error',
  // This package's: a log record of the Rust worker core, and a completion that was not taken (a
  // `CompletionRefusal`: at once when the event was not in flight, or later from the worker core).
  WORKER_LOG: 'worker.log',
  STEP_COMPLETION_REFUSED: 'step.completion.refused',
} as const;

export type EventName = (typeof EventNames)[keyof typeof EventNames];
