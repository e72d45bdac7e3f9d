/**
 * A worker written the way tasker-core's TypeScript worker is: handler classes with `call(context)`
 * returning a `StepHandlerResult`, a `StepContext` read from the camelCase `NapiStepEvent`, a registry keyed by
 * `stepDefinition.handlerCallable`, a poller that calls `pollStepEvents()` up to 100 times per 10 ms tick and
 * a subscriber that answers with `NapiStepExecutionResult` objects: all of it over the injected module, here
 * `createNapiModule()` on this package's ring and step store. It handles the store's `linear` template
 * (each step squares its input) until `steps` events were handled. Fill a store and run it:
 *   ../target/release/tasker-ring store enqueue --count 25
 *   node --import tsx examples/tasker-core-worker.ts [config.json] | bun ... | deno run -A ...
 * (`config.json`: this package's bootstrap keys, e.g. `{"database_url": "sqlite:steps.db"}`.)
 */
import { createNapiModule, type NapiModule, type NapiStepEvent, type NapiStepExecutionResult } from '../src/tasker-core/index.ts';

/** What a handler returns (tasker-core's `StepHandlerResult` fields that reach the result). */
interface StepHandlerResult {
  success: boolean;
  result: Record<string, unknown>;
  metadata: Record<string, unknown>;
  errorMessage?: string;
  errorType?: string;
  retryable?: boolean;
}

/** The handler's view of one event (tasker-core's `StepContext` fields). */
class StepContext {
  readonly event: NapiStepEvent;
  readonly inputData: Record<string, unknown>;
  readonly stepConfig: Record<string, unknown>;
  readonly retryCount: number;

  constructor(event: NapiStepEvent, inputData: Record<string, unknown>, stepConfig: Record<string, unknown>, retryCount: number) {
    this.event = event;
    this.inputData = inputData;
    this.stepConfig = stepConfig;
    this.retryCount = retryCount;
  }

  static fromEvent(event: NapiStepEvent): StepContext {
    const inputData = (event.task.context ?? {}) as Record<string, unknown>;
    const stepConfig = (event.stepDefinition.handlerInitialization ?? {}) as Record<string, unknown>;
    return new StepContext(event, inputData, stepConfig, event.workflowStep.attempts);
  }

  /** The `result` of a parent step, by its name. */
  getDependencyResult(name: string): Record<string, unknown> | undefined {
    return this.event.dependencyResults[name]?.result as Record<string, unknown> | undefined;
  }
}

abstract class StepHandler {
  abstract call(context: StepContext): Promise<StepHandlerResult>;

  protected success(result: Record<string, unknown>): StepHandlerResult {
    return { success: true, result, metadata: {} };
  }

  protected failure(message: string, errorType: string, retryable: boolean): StepHandlerResult {
    return { success: false, result: {}, metadata: {}, errorMessage: message, errorType, retryable };
  }
}

/** `linear_step_1`: squares the task's `even_number`. */
class SquareInputHandler extends StepHandler {
  async call(context: StepContext): Promise<StepHandlerResult> {
    const n = context.inputData.even_number;
    if (typeof n !== 'number') return this.failure('the task has no even_number', 'ValidationError', false);
    return this.success({ value: n * n, operation: context.stepConfig.operation, input: n });
  }
}

/** `linear_step_2..4`: squares its parent's value. */
class SquareParentHandler extends StepHandler {
  private readonly parent: string;

  constructor(parent: string) {
    super();
    this.parent = parent;
  }

  async call(context: StepContext): Promise<StepHandlerResult> {
    const value = context.getDependencyResult(this.parent)?.value;
    if (typeof value !== 'number') return this.failure(`no value from ${this.parent}`, 'DependencyError', true);
    return this.success({ value: value * value, operation: context.stepConfig.operation, input: value });
  }
}

const registry = new Map<string, StepHandler>([
  ['LinearWorkflow.StepHandlers.LinearStep1Handler', new SquareInputHandler()],
  ['LinearWorkflow.StepHandlers.LinearStep2Handler', new SquareParentHandler('linear_step_1')],
  ['LinearWorkflow.StepHandlers.LinearStep3Handler', new SquareParentHandler('linear_step_2')],
  ['LinearWorkflow.StepHandlers.LinearStep4Handler', new SquareParentHandler('linear_step_3')],
]);

/** The subscriber's answer, built as tasker-core's subscriber builds it (optional fields omitted). */
function executionResult(event: NapiStepEvent, outcome: StepHandlerResult, executionTimeMs: number, workerId: string): NapiStepExecutionResult {
  const result: NapiStepExecutionResult = {
    stepUuid: event.stepUuid,
    success: outcome.success,
    result: outcome.result,
    status: outcome.success ? 'completed' : 'failed',
    metadata: { executionTimeMs, completedAt: new Date().toISOString(), workerId },
  };
  if (outcome.retryable !== undefined) result.metadata.retryable = outcome.retryable;
  if (!outcome.success) {
    result.error = { message: outcome.errorMessage ?? 'Unknown error' };
    if (outcome.errorType !== undefined) result.error.errorType = outcome.errorType;
    if (outcome.retryable !== undefined) result.error.retryable = outcome.retryable;
  }
  return result;
}

export interface WorkerRun {
  handled: number;
  refused: number;
  workerId: string;
}

/** Runs the worker on `module` until `steps` events were handled, then shuts it down as tasker-core's server does. */
export async function runTaskerCoreWorker(steps: number, configPath?: string, module: NapiModule = createNapiModule()): Promise<WorkerRun> {
  const boot = module.bootstrapWorker({ namespace: 'default', ...(configPath !== undefined && { configPath }) });
  const workerId = boot.workerId ?? 'tasker-core-worker';
  module.logInfo('tasker-core style worker started', { worker_id: workerId });
  let handled = 0;
  let refused = 0;
  let active = 0;
  let pollCount = 0;

  const handle = async (event: NapiStepEvent): Promise<void> => {
    active += 1;
    const started = Date.now();
    const handler = registry.get(event.stepDefinition.handlerCallable);
    let outcome: StepHandlerResult;
    try {
      outcome = handler
        ? await handler.call(StepContext.fromEvent(event))
        : { success: false, result: {}, metadata: {}, errorMessage: 'no handler', errorType: 'handler_not_found', retryable: false };
    } catch (error) {
      outcome = { success: false, result: {}, metadata: {}, errorMessage: (error as Error).message, errorType: 'handler_error', retryable: true };
    }
    if (module.completeStepEvent(event.eventId, executionResult(event, outcome, Date.now() - started, workerId))) handled += 1;
    else refused += 1;
    active -= 1;
  };

  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        pollCount += 1;
        for (let i = 0; i < 100; i++) {
          const event = module.pollStepEvents();
          if (event === null) break;
          void handle(event);
        }
        if (pollCount % 100 === 0) module.checkStarvationWarnings();
        if (pollCount % 1000 === 0) module.cleanupTimeouts();
        if (handled >= steps) {
          clearInterval(timer);
          resolve();
        }
      } catch (error) {
        clearInterval(timer);
        reject(error);
      }
    }, 10);
  });

  module.transitionToGracefulShutdown();
  while (active > 0) await new Promise((r) => setTimeout(r, 5));
  module.stopWorker();
  return { handled, refused, workerId };
}

const self = (globalThis as { process?: { argv?: string[] } }).process?.argv?.[1] ?? '';
if (self.endsWith('tasker-core-worker.ts')) {
  const configPath = (globalThis as { process?: { argv?: string[] } }).process?.argv?.[2];
  const module = createNapiModule();
  try {
    const run = await runTaskerCoreWorker(100, configPath, module);
    console.log(`tasker-core style worker ${run.workerId}: ${run.handled} steps handled, ${run.refused} refused`);
  } finally {
    module.close();
  }
}
