/**
 * `createNapiModule()`: tasker-core's `NapiModule` over this package's worker core, ring and step store, so
 * tasker-core's TypeScript worker (its `EventPoller`, `StepExecutionSubscriber`, handler registry and
 * `TaskerClient`, which take the module by injection) runs unchanged on it.
 *
 * - Lifecycle: one worker per process, as theirs. `bootstrapWorker({ namespace, configPath })` starts it
 *   (see `bootstrap-config.ts`); failures throw, as theirs do. `environment` is `TASKER_ENV`, else
 *   `development` (tasker-core's rule), unless `options.environment` names it.
 * - Dispatch (`dispatch.ts`): events read from the ring, answered at once from the adapter's in-flight set.
 *   Calls that need a worker throw `WorkerNotInitializedError` before `bootstrapWorker()` and after
 *   `stopWorker()`, as theirs do.
 * - `pollInProcessEvents()` (`domain-events.ts`): the worker core's domain events, one per call from a queue
 *   refilled by one FFI call at most every 100 ms; the first call subscribes (the library records nothing
 *   before it). Throws `WorkerNotInitializedError` without a worker, as theirs does.
 * - `client*` (`client.ts`) and `log*` (`logging.ts`) go through the library's `client_call` and
 *   `log_message`; neither ever throws.
 *
 * Beyond the contract, the object has `close()`: stops a worker this module started and unloads the library.
 */
import process from 'node:process';
import { createFfiAdapter } from '../ffi/factory.ts';
import type { NativeFfiAdapter } from '../ffi/native-adapter.ts';
import type { RuntimeType } from '../runtime.ts';
import { workerBootstrapConfig } from './bootstrap-config.ts';
import { type ClientOp, clientCall, createTaskArgs, listTasksArgs } from './client.ts';
import { StepDispatch } from './dispatch.ts';
import { DomainEventFeed } from './domain-events.ts';
import { WorkerNotInitializedError } from './errors.ts';
import { type LogLevelName, logRecord } from './logging.ts';
import type { BootstrapResult, NapiModule, WorkerStatus } from './types.ts';
import { PACKAGE_VERSION } from './version.ts';

export interface NapiModuleOptions {
  /** Path of libtasker_worker (else `TASKER_LIBRARY_PATH`, the bundled copy, ...: the package's search). */
  libraryPath?: string;
  /** Force a runtime's adapter (default: the detected runtime). */
  runtime?: RuntimeType;
  /** `WorkerStatus.environment` (default: `TASKER_ENV`, else `development`). */
  environment?: string;
}

/** tasker-core's `NapiModule`, plus `close()`. */
export interface TaskerCoreModule extends NapiModule {
  /** Stops a worker this module started and unloads the library. Idempotent; a later call loads it again. */
  close(): void;
}

/** The worker core's answers to stop / graceful shutdown, as `adapter.stopWorker()` returns them. */
interface ControlAnswer {
  status?: string;
  worker_id?: string;
}

function environmentOf(options: NapiModuleOptions): string {
  if (options.environment !== undefined) return options.environment;
  try {
    return process.env.TASKER_ENV || 'development';
  } catch {
    return 'development'; // Deno without --allow-env
  }
}

function controlStatus(text: string, running: boolean): WorkerStatus {
  let answer: ControlAnswer = {};
  try {
    answer = JSON.parse(text) as ControlAnswer;
  } catch {
    answer = { status: text };
  }
  const status: WorkerStatus = { success: true, running };
  if (answer.worker_id !== undefined) status.workerId = answer.worker_id;
  if (answer.status !== undefined) status.status = answer.status;
  return status;
}

/** Each module's adapter, for `moduleAdapter`. */
const adapters = new WeakMap<TaskerCoreModule, () => NativeFfiAdapter | null>();

/**
 * The adapter under a module (null until its first use and after `close()`), for this repository's benchmarks
 * only (they wait for ready events and complete them under the module). Not exported by the package.
 */
export function moduleAdapter(module: TaskerCoreModule): NativeFfiAdapter | null {
  return adapters.get(module)?.() ?? null;
}

export function createNapiModule(options: NapiModuleOptions = {}): TaskerCoreModule {
  let adapter: NativeFfiAdapter | null = null;
  let dispatch: StepDispatch | null = null;
  /** Kept across workers: the library's log is process-wide, and a queued event outlives its worker. */
  let domainEvents: DomainEventFeed | null = null;
  /** The worker this module bootstrapped (until `stopWorker()`). */
  let workerId: string | undefined;
  let environment = environmentOf(options);

  const native = (): NativeFfiAdapter => {
    adapter ??= createFfiAdapter({ libraryPath: options.libraryPath, runtime: options.runtime });
    return adapter;
  };
  const worker = (): StepDispatch => {
    if (dispatch === null) throw new WorkerNotInitializedError();
    return dispatch;
  };
  const client = (op: ClientOp, args: Record<string, unknown>) => clientCall(() => (json) => native().clientCall(json), op, args);
  const log = (level: LogLevelName, message: string, fields?: Record<string, unknown>) =>
    logRecord(() => (n, text, fieldsJson) => native().logMessage(n, text, fieldsJson), level, message, fields);

  const module: TaskerCoreModule = {
    getVersion: () => PACKAGE_VERSION,
    getRustVersion() {
      const abi = native().abiVersion;
      return `libtasker_worker (C ABI ${abi >>> 16}, region layout ${(abi >>> 8) & 0xff}.${abi & 0xff}) at ${native().libraryPath}`;
    },
    healthCheck() {
      try {
        native();
        return true;
      } catch {
        return false;
      }
    },
    bootstrapWorker(config) {
      const workerConfig = workerBootstrapConfig(config);
      const result = native().bootstrapWorker(workerConfig);
      environment = environmentOf(options);
      dispatch ??= new StepDispatch(native());
      const running = result.status === 'already_running';
      const out: BootstrapResult = {
        success: true,
        status: result.status,
        message: result.message ?? (running ? 'Worker is already running' : `worker started on the ${result.transport ?? 'ring'} transport`),
      };
      if (typeof result.worker_id === 'string') out.workerId = workerId = result.worker_id;
      return out;
    },
    isWorkerRunning: () => native().isWorkerRunning(),
    getWorkerStatus() {
      const status = adapter?.getWorkerStatus();
      // No worker, or only a stopped one this module did not start (the library keeps the last one's status).
      if (status?.worker_id === undefined || (!status.running && status.worker_id !== workerId)) return { success: true, running: false, status: 'stopped' };
      const out: WorkerStatus = { success: true, running: status.running, workerId: status.worker_id, environment };
      if (status.worker_core_status !== undefined) out.status = status.worker_core_status;
      return out;
    },
    stopWorker() {
      if (adapter === null || dispatch === null) return { success: true, running: false, status: 'not_running' };
      dispatch = null;
      const stopped = controlStatus(adapter.stopWorker(), false);
      // A worker that finished a graceful shutdown by itself is stopped too: the library says `not_running`.
      if (stopped.status === 'not_running' && workerId !== undefined) {
        stopped.status = 'stopped';
        stopped.workerId = workerId;
      }
      workerId = undefined;
      return stopped;
    },
    transitionToGracefulShutdown() {
      worker();
      const status = controlStatus(native().transitionToGracefulShutdown(), true);
      status.running = status.status === 'draining';
      return status;
    },

    pollStepEvents: () => worker().poll(),
    completeStepEvent: (eventId, result) => worker().complete(eventId, result),
    pollInProcessEvents() {
      worker();
      domainEvents ??= new DomainEventFeed(() => native().pollDomainEvents());
      return domainEvents.poll();
    },
    checkpointYieldStepEvent: (eventId, data) => worker().checkpoint(eventId, data),

    getFfiDispatchMetrics: () => worker().metrics(),
    checkStarvationWarnings() {
      worker();
      native().checkStarvationWarnings();
    },
    cleanupTimeouts() {
      worker();
      native().cleanupTimeouts();
    },

    clientCreateTask: (request) => client('create_task', createTaskArgs(request)),
    clientGetTask: (taskUuid) => client('get_task', { task_uuid: taskUuid }),
    clientListTasks: (params) => client('list_tasks', listTasksArgs(params)),
    clientCancelTask: (taskUuid) => client('cancel_task', { task_uuid: taskUuid }),
    clientListTaskSteps: (taskUuid) => client('list_task_steps', { task_uuid: taskUuid }),
    clientGetStep: (taskUuid, stepUuid) => client('get_step', { task_uuid: taskUuid, step_uuid: stepUuid }),
    clientGetStepAuditHistory: (taskUuid, stepUuid) => client('step_audit_history', { task_uuid: taskUuid, step_uuid: stepUuid }),
    clientHealthCheck: () => client('health', {}),

    logError: (message, fields) => log('error', message, fields),
    logWarn: (message, fields) => log('warn', message, fields),
    logInfo: (message, fields) => log('info', message, fields),
    logDebug: (message, fields) => log('debug', message, fields),
    logTrace: (message, fields) => log('trace', message, fields),

    close() {
      dispatch = null;
      domainEvents = null;
      adapter?.close();
      adapter = null;
    },
  };
  adapters.set(module, () => adapter);
  return module;
}
