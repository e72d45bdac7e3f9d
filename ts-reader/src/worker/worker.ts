/**
 * TaskerWorker: what a user needs to run step handlers in production, on top of the adapter and the
 * EventPoller. Handlers are registered by `handler_class` (tasker-core's `callable` too) and run with a
 * concurrency limit; every delivered event gets exactly one completion (success, thrown error, timeout,
 * missing handler, shutdown), so no handler outcome is dropped. Delivery is at least once: handlers must be
 * idempotent.
 */
import process from 'node:process';
import { DoorbellError, FfiError, type RingSealedError } from '../errors.ts';
import { TaskerEventEmitter } from '../events/event-emitter.ts';
import { EventNames } from '../events/event-names.ts';
import { EventPoller } from '../events/event-poller.ts';
import { createFfiAdapter } from '../ffi/factory.ts';
import { isRingAwareAdapter, type RingAwareAdapter } from '../ffi/native-adapter.ts';
import { checkOptionKeys } from '../options.ts';
import type {
  BootstrapConfig,
  BootstrapResult,
  CompletionRefusal,
  DependencyResults,
  FfiStepEvent,
  StepDefinition,
  Task,
  WorkerLogRecord,
  WorkflowStep,
} from '../protocol.ts';
import { detectRuntime } from '../runtime.ts';
import { describeThrown, failureResult, handlerName, type OutcomeMetadata, successResult } from './results.ts';

/** What a handler receives besides the event. */
export interface StepContext {
  readonly event: FfiStepEvent;
  readonly task: Task;
  readonly step: WorkflowStep;
  readonly stepDefinition: StepDefinition;
  readonly dependencyResults: DependencyResults;
  /**
   * Aborted when the handler times out or the worker shuts down past its deadline. Made on first read (an
   * accessor, so `{ ...context }` does not copy it: pass `context.signal` on explicitly).
   */
  readonly signal: AbortSignal;
}

/** A step handler: its return value is the step's result; a throw is a failure (see `PermanentError`). */
export type StepHandler = (context: StepContext) => unknown;

export interface TaskerWorkerOptions {
  /** An adapter to use (default: the runtime's, from `createFfiAdapter`). */
  adapter?: RingAwareAdapter;
  libraryPath?: string;
  /**
   * Passed to `bootstrapWorker` (`log_stderr` defaults to false here: logs are forwarded to `logger`).
   * Step events come from the step store (`database_url`, else `TASKER_DATABASE_URL`, else `./tasker.db`)
   * unless `source` asks for the synthetic source.
   */
  bootstrap?: BootstrapConfig;
  /** Handlers running at once, at most (= the poller's maxInFlight). Default 100. */
  concurrency?: number;
  /** A handler running longer is aborted and its step failed as `handler_timeout` (retryable). Default 25 s. */
  handlerTimeoutMs?: number;
  /** How long `stop()` lets running handlers finish before aborting them. Default 30 s. */
  shutdownTimeoutMs?: number;
  pollingIntervalMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  /**
   * Receives the Rust worker core's log records and this worker's own (target `@tasker-systems/worker`:
   * fatal errors, doorbell fallbacks). Default: the console, by level.
   */
  logger?: (record: WorkerLogRecord) => void;
  /** The emitter for lifecycle and step events (default: a new one). */
  emitter?: TaskerEventEmitter;
}

export interface TaskerWorkerStats {
  received: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  missingHandler: number;
  /** Outcomes that arrived after their step was already completed (timeout or shutdown): ignored. */
  lateOutcomes: number;
  /** Completions not taken (`step.completion.refused`): at once, or later by the worker core or its store. */
  refused: number;
  /** Handlers still running when a fatal error stopped the worker: aborted, their steps left to the store. */
  abandoned: number;
  running: number;
}

const OPTION_KEYS: readonly (keyof TaskerWorkerOptions)[] = [
  'adapter',
  'libraryPath',
  'bootstrap',
  'concurrency',
  'handlerTimeoutMs',
  'shutdownTimeoutMs',
  'pollingIntervalMs',
  'handleSignals',
  'logger',
  'emitter',
];

/** The `target` of this package's own log records. */
const LOG_TARGET = '@tasker-systems/worker';

function defaultLogger(record: WorkerLogRecord): void {
  const fields = Object.keys(record.fields).length > 0 ? ` ${JSON.stringify(record.fields)}` : '';
  const line = `[tasker-worker ${record.level}] ${record.target}: ${record.message}${fields}`;
  if (record.level === 'error') console.error(line);
  else if (record.level === 'warn') console.warn(line);
  else if (record.level === 'info') console.info(line);
  else console.debug(line);
}

/**
 * One handler run, and the context its handler gets. Its AbortController is made only when the handler
 * reads `signal` (most never do; a controller per step, its signal and the listener the worker used to add
 * cost about as much JS time as parsing the event: 13% of the main job's JS samples against 17%, issue 21).
 * `signal` is an accessor on the prototype (a getter in an object literal made a closure per step and
 * slowed every field read in the handler). Settled once (`done`); cut short at most once (`abort`), and a
 * signal first read after that starts aborted with the same reason.
 */
class Run implements StepContext {
  readonly event: FfiStepEvent;
  readonly task: Task;
  readonly step: WorkflowStep;
  readonly stepDefinition: StepDefinition;
  readonly dependencyResults: DependencyResults;
  readonly #name: string;
  readonly #startedAt: number;
  #done = false;
  #controller: AbortController | null = null;
  #cut = false;
  #reason: unknown = undefined;

  constructor(event: FfiStepEvent, name: string, startedAt: number) {
    const step = event.task_sequence_step;
    this.event = event;
    this.task = step.task;
    this.step = step.workflow_step;
    this.stepDefinition = step.step_definition;
    this.dependencyResults = step.dependency_results;
    this.#name = name;
    this.#startedAt = startedAt;
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#cut) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** The handler's name (internal: the worker's bookkeeping, not part of `StepContext`). */
  handlerName(): string {
    return this.#name;
  }

  startedAt(): number {
    return this.#startedAt;
  }

  isDone(): boolean {
    return this.#done;
  }

  markDone(): void {
    this.#done = true;
  }

  abort(reason: unknown): void {
    if (this.#cut) return;
    this.#cut = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class TaskerWorker {
  readonly emitter: TaskerEventEmitter;
  private readonly handlers = new Map<string, StepHandler>();
  private readonly options: TaskerWorkerOptions;
  private readonly concurrency: number;
  private readonly handlerTimeoutMs: number;
  private readonly shutdownTimeoutMs: number;
  /** The runtime, detected once: it goes into every result's metadata. */
  private readonly runtime = detectRuntime();
  private adapter: RingAwareAdapter | null = null;
  private poller: EventPoller | null = null;
  /**
   * Handlers that returned a promise and have not settled, in start order, so in deadline order: one timer,
   * armed for the oldest, times them all out (`expireDue`). A synchronous handler settles before it returns
   * and never enters.
   */
  private readonly running = new Map<string, Run>();
  private deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  /** Synchronous handler calls under way (0, or more when a handler dispatches re-entrantly): `stats().running`. */
  private calling = 0;
  private readonly counters: Omit<TaskerWorkerStats, 'running'> = {
    received: 0,
    succeeded: 0,
    failed: 0,
    timedOut: 0,
    missingHandler: 0,
    lateOutcomes: 0,
    refused: 0,
    abandoned: 0,
  };
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private stopping: Promise<void> | null = null;
  private readonly logger: (record: WorkerLogRecord) => void;
  /** The fatal error that stopped the worker, if one did. */
  private fatal: Error | null = null;
  /** How the worker ended, once it has: `done` settles from it. */
  private ended: { error: Error | null } | null = null;
  /** Created the first time `done` is read: an unread one never becomes an unhandled rejection. */
  private doneDeferred: Deferred | null = null;
  private readonly signalHandler = () => {
    void this.stop();
  };

  constructor(options: TaskerWorkerOptions = {}) {
    checkOptionKeys('TaskerWorker', options, OPTION_KEYS);
    this.options = options;
    this.logger = options.logger ?? defaultLogger;
    this.emitter = options.emitter ?? new TaskerEventEmitter();
    // Active from construction: listeners see handler registration and every lifecycle event.
    this.emitter.start();
    this.concurrency = options.concurrency ?? 100;
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? 25_000;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
    if (!(this.concurrency >= 1)) throw new RangeError(`concurrency must be at least 1, got ${this.concurrency}`);
    if (!(this.handlerTimeoutMs > 0)) throw new RangeError(`handlerTimeoutMs must be positive, got ${this.handlerTimeoutMs}`);
  }

  /** Registers the handler for `name` (an event's `handler_class` or `callable`). */
  register(name: string, handler: StepHandler): this {
    if (typeof handler !== 'function') throw new TypeError(`handler for '${name}' must be a function`);
    this.handlers.set(name, handler);
    this.emitter.publish(EventNames.HANDLER_REGISTERED, { name });
    return this;
  }

  /** Bootstraps the Rust worker, maps its region and starts polling. */
  async start(): Promise<BootstrapResult> {
    if (this.state !== 'idle') throw new Error(`TaskerWorker cannot start from state '${this.state}'`);
    const adapter = this.options.adapter ?? createFfiAdapter(this.options.libraryPath ? { libraryPath: this.options.libraryPath } : {});
    if (!isRingAwareAdapter(adapter)) throw new TypeError('TaskerWorker needs an adapter of this package');
    this.adapter = adapter;
    let result: BootstrapResult;
    try {
      result = adapter.bootstrapWorker({ log_stderr: false, ...this.options.bootstrap });
    } catch (error) {
      this.emitter.publish(EventNames.WORKER_ERROR, error);
      throw error;
    }
    const poller = new EventPoller(adapter, this.options.pollingIntervalMs ?? 10, 100, 1000, { maxInFlight: this.concurrency });
    this.poller = poller;
    const logger = this.logger;
    poller.onStepEvent((event) => this.dispatch(event));
    poller.onError((error) => {
      this.emitter.publish(EventNames.POLLER_ERROR, error);
      if (poller.failure === error) this.fail(error);
      else this.log(error instanceof DoorbellError ? 'warn' : 'error', error);
    });
    poller.onRefusal((refusal) => this.refused(refusal));
    poller.onSealed((sealed) => this.sealed(sealed));
    // The metrics are read (an FFI call and a parse, ~0.4-0.9 ms on an idle thread's cold caches) only for
    // listeners: the worker core's faults reach the poller through its own check, and its starvation
    // warnings through the log.
    poller.onMetrics(
      (metrics) => {
        this.emitter.publish(EventNames.POLLER_METRICS, metrics);
        this.emitter.publish(EventNames.METRICS_UPDATED, metrics);
      },
      () => this.heard(EventNames.POLLER_METRICS) || this.heard(EventNames.METRICS_UPDATED) || this.heard(EventNames.POLLER_STARVATION_DETECTED),
    );
    poller.onStarvation((metrics) => this.emitter.publish(EventNames.POLLER_STARVATION_DETECTED, metrics));
    poller.onCycle((events) => this.emitter.publish(EventNames.POLLER_CYCLE_COMPLETE, { events }));
    poller.onLog((record) => {
      this.emitter.publish(EventNames.WORKER_LOG, record);
      logger(record);
    });
    this.state = 'running';
    poller.start();
    if (this.options.handleSignals ?? true) {
      process.once('SIGTERM', this.signalHandler);
      process.once('SIGINT', this.signalHandler);
    }
    this.emitter.publish(EventNames.POLLER_STARTED, {});
    this.emitter.publish(EventNames.WORKER_STARTED, result);
    this.emitter.publish(EventNames.WORKER_READY, result);
    return result;
  }

  /**
   * Graceful stop: the worker stops claiming, events already in the ring are still run, running handlers
   * get until `shutdownTimeoutMs` (then they are aborted and their steps failed as retryable), every
   * completion is written, then the worker stops and the adapter closes. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Settles when the worker has stopped: resolved after `stop()`, rejected with the error when a fatal one
   * (a corrupt ring, a dead producer, a truncated region, a worker core that stopped on its own) stopped it.
   * Created the first time it is read, so a worker whose `done` nobody reads never leaves an unhandled
   * rejection; such a worker with no `worker.error` listener sets `process.exitCode = 1` on a fatal error
   * instead, as an EventEmitter's unheard `'error'` would.
   */
  get done(): Promise<void> {
    if (this.doneDeferred === null) {
      this.doneDeferred = deferred();
      if (this.ended !== null) this.settleDone();
    }
    return this.doneDeferred.promise;
  }

  stats(): TaskerWorkerStats {
    return { ...this.counters, running: this.running.size + this.calling };
  }

  get isRunning(): boolean {
    return this.state === 'running';
  }

  /**
   * A fatal error: logged through the logger, published as `worker.error`, then the worker stops without
   * waiting (the transport cannot carry completions any more): running handlers are aborted and their steps
   * left to the source (a store hands them out again after their claim's deadline), the worker core is
   * stopped and the adapter closed. `done` rejects with the error.
   */
  private fail(error: Error): void {
    if (this.fatal !== null || this.state === 'idle' || this.state === 'stopped') return;
    this.fatal = error;
    this.log('error', error, 'fatal: the worker stops');
    const heard = this.emitter.listenerCount(EventNames.WORKER_ERROR) > 0 || this.doneDeferred !== null;
    this.emitter.publish(EventNames.WORKER_ERROR, error);
    if (!heard) process.exitCode = 1;
    for (const [, run] of this.running) {
      run.markDone();
      run.abort(error);
      this.counters.abandoned += 1;
    }
    this.running.clear();
    this.disarmDeadline();
    if (this.state === 'stopping') return; // shutdown() finishes the stop and settles `done`
    this.stopping = Promise.resolve();
    this.state = 'stopping';
    this.teardown();
  }

  /** The end of every stop: poller, signal handlers, worker core, adapter, events, `done`. */
  private teardown(): void {
    this.disarmDeadline();
    process.off('SIGTERM', this.signalHandler);
    process.off('SIGINT', this.signalHandler);
    const adapter = this.adapter as RingAwareAdapter;
    const poller = this.poller as EventPoller;
    poller.stop();
    this.emitter.publish(EventNames.POLLER_STOPPED, poller.stats());
    try {
      adapter.stopWorker();
    } catch (error) {
      this.log('error', error as Error, 'stopping the worker core failed');
    } finally {
      if (!this.options.adapter) adapter.close();
    }
    this.state = 'stopped';
    this.emitter.publish(EventNames.WORKER_STOPPED, this.stats());
    this.ended = { error: this.fatal };
    this.settleDone();
  }

  private settleDone(): void {
    const d = this.doneDeferred;
    if (d === null || this.ended === null) return;
    if (this.ended.error) d.reject(this.ended.error);
    else d.resolve();
  }

  /**
   * The worker core sealed the events ring (layout 1.1): it is finishing a stop it was asked for elsewhere
   * (or its own drain deadline passed during ours). Not an error: logged at `info`, and a running worker
   * follows with its own graceful stop (running handlers finish, their completions are written), so `done`
   * resolves and the exit code stays 0.
   */
  private sealed(sealed: RingSealedError): void {
    this.log('info', sealed, this.state === 'running' ? 'the worker core is stopping; this worker stops too' : undefined);
    if (this.state === 'running') void this.stop();
  }

  /** A completion that was not taken: counted and published as `step.completion.refused`. */
  private refused(refusal: CompletionRefusal): void {
    this.counters.refused += 1;
    this.emitter.publish(EventNames.STEP_COMPLETION_REFUSED, refusal);
  }

  /** One of this package's own log records, through the logger. */
  private log(level: WorkerLogRecord['level'], error: Error, what?: string): void {
    const code = error instanceof FfiError ? error.code : error.name;
    try {
      this.logger({
        ts_unix_ms: Date.now(),
        level,
        target: LOG_TARGET,
        message: what ? `${what}: ${error.message}` : error.message,
        fields: { code, error: error.name },
      });
    } catch {
      // A throwing logger must not hide the error from the other channels.
    }
  }

  private async shutdown(): Promise<void> {
    if (this.state !== 'running') {
      if (this.state === 'idle') {
        this.state = 'stopped';
        this.ended = { error: null };
        this.settleDone();
      }
      return;
    }
    this.state = 'stopping';
    process.off('SIGTERM', this.signalHandler);
    process.off('SIGINT', this.signalHandler);
    const adapter = this.adapter as RingAwareAdapter;
    this.emitter.publish(EventNames.WORKER_SHUTDOWN_STARTED, {});
    try {
      adapter.transitionToGracefulShutdown();
      const deadline = Date.now() + this.shutdownTimeoutMs;
      // The worker core stops by itself once nothing is pending or in flight (or at its own deadline).
      while (this.fatal === null && Date.now() < deadline && adapter.getWorkerStatus().worker_core_status === 'draining') {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      for (const run of this.running.values()) this.expire(run, new Error('worker shutting down'));
      // Aborted handlers complete as failures synchronously in their abort path; flush what is queued.
      const flushDeadline = Date.now() + 2000;
      while (this.fatal === null && adapter.flushCompletions() > 0 && Date.now() < flushDeadline) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } catch (error) {
      this.emitter.publish(EventNames.WORKER_ERROR, error);
    } finally {
      this.teardown();
    }
  }

  private dispatch(event: FfiStepEvent): void {
    this.counters.received += 1;
    this.publishIfHeard(EventNames.STEP_EXECUTION_RECEIVED, event);
    const name = handlerName(event);
    const handler = name === null ? undefined : this.handlers.get(name);
    const startedAt = Date.now();
    const meta = (): OutcomeMetadata => this.metadata(event, name, startedAt);
    if (!handler) {
      this.counters.missingHandler += 1;
      const why = name === null ? 'the step definition names no handler' : `no handler registered for '${name}'`;
      this.finish(event, failureResult(event, { message: why, errorType: 'handler_not_found', retryable: false }, meta()), 'failed');
      return;
    }
    const run = new Run(event, name as string, startedAt);
    this.publishIfHeard(EventNames.STEP_EXECUTION_STARTED, event);
    let outcome: unknown;
    this.calling += 1;
    try {
      outcome = handler(run);
    } catch (error) {
      this.handlerThrew(event, run, error, meta);
      return;
    } finally {
      this.calling -= 1;
    }
    if (outcome instanceof Promise || (typeof outcome === 'object' && outcome !== null && typeof (outcome as PromiseLike<unknown>).then === 'function')) {
      // Running until it settles: timed out by the shared deadline timer, aborted by a stop.
      this.running.set(event.event_id, run);
      this.armDeadline();
      Promise.resolve(outcome).then(
        (value) => this.settle(event, run, successResult(event, value, meta()), 'succeeded'),
        (error: unknown) => this.handlerThrew(event, run, error, meta),
      );
    } else {
      this.settle(event, run, successResult(event, outcome, meta()), 'succeeded');
    }
  }

  /**
   * Cuts a running handler short (its timeout, or a stop past its deadline): its step fails now (retryable:
   * `handler_timeout`, or `worker_shutdown` while stopping), then its signal aborts with `reason`; what
   * the handler returns later is counted as a late outcome and dropped.
   */
  private expire(run: Run, reason: Error): void {
    if (run.isDone()) return;
    const event = run.event;
    const name = run.handlerName();
    const shutdown = this.state === 'stopping';
    const message = shutdown ? `worker shut down while '${name}' was running` : this.timeoutMessage(name);
    this.counters.timedOut += 1;
    this.emitter.publish(EventNames.STEP_EXECUTION_TIMEOUT, { event, message });
    const meta = this.metadata(event, name, run.startedAt());
    this.settle(event, run, failureResult(event, { message, errorType: shutdown ? 'worker_shutdown' : 'handler_timeout', retryable: true }, meta), 'failed');
    run.abort(reason);
  }

  /** A result's metadata: the handler, its time so far, the runtime, the attempt. */
  private metadata(event: FfiStepEvent, handler: string | null, startedAt: number): OutcomeMetadata {
    return {
      handler,
      execution_time_ms: Date.now() - startedAt,
      worker_runtime: this.runtime,
      attempts: event.task_sequence_step?.workflow_step?.attempts ?? 0,
    };
  }

  private timeoutMessage(name: string): string {
    return `handler '${name}' timed out after ${this.handlerTimeoutMs} ms`;
  }

  /** Arms the deadline timer for the oldest running handler, unless it is armed or none runs. */
  private armDeadline(): void {
    if (this.deadlineTimer !== null) return;
    const oldest = this.running.values().next();
    if (oldest.done) return;
    const wait = Math.max(0, oldest.value.startedAt() + this.handlerTimeoutMs - Date.now());
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      this.expireDue();
    }, wait);
  }

  private disarmDeadline(): void {
    if (this.deadlineTimer === null) return;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  /** Times out every handler past its deadline (the oldest first; the first one not due ends the scan). */
  private expireDue(): void {
    const now = Date.now();
    for (const run of this.running.values()) {
      if (run.startedAt() + this.handlerTimeoutMs > now) break;
      this.expire(run, new Error(this.timeoutMessage(run.handlerName())));
    }
    this.armDeadline();
  }

  /** Whether publishing `name` does anything: someone listens, or the emitter is stopped (a drop it reports). */
  private heard(name: string): boolean {
    return this.emitter.listenerCount(name) > 0 || !this.emitter.isActive();
  }

  private publishIfHeard(name: string, payload: unknown): void {
    if (this.heard(name)) this.emitter.publish(name, payload);
  }

  private handlerThrew(event: FfiStepEvent, run: Run, error: unknown, meta: () => OutcomeMetadata): void {
    if (run.isDone()) {
      this.counters.lateOutcomes += 1;
      return;
    }
    this.emitter.publish(EventNames.HANDLER_ERROR, { event, error });
    this.settle(event, run, failureResult(event, describeThrown(error), meta()), 'failed');
  }

  /** Completes a step exactly once; a second outcome (after a timeout) is counted and ignored. */
  private settle(event: FfiStepEvent, run: Run, result: object, kind: 'succeeded' | 'failed'): void {
    if (run.isDone()) {
      this.counters.lateOutcomes += 1;
      return;
    }
    run.markDone();
    this.running.delete(event.event_id);
    this.finish(event, result, kind);
  }

  private finish(event: FfiStepEvent, result: object, kind: 'succeeded' | 'failed'): void {
    let json: string;
    try {
      json = JSON.stringify(result);
    } catch (error) {
      // A result that cannot be serialised (a cycle, a BigInt) becomes a failure of its own.
      const why = describeThrown(error);
      json = JSON.stringify(
        failureResult(
          event,
          { ...why, message: `step result is not serialisable: ${why.message}`, retryable: false },
          { handler: handlerName(event), execution_time_ms: 0, worker_runtime: this.runtime, attempts: 0 },
        ),
      );
      kind = 'failed';
    }
    this.counters[kind] += 1;
    try {
      if (!(this.adapter as RingAwareAdapter).completeStepEvent(event.event_id, json)) {
        this.refused({
          event_id: event.event_id,
          kind: 'not_in_flight',
          message: 'the event is no longer in flight (read longer ago than completion_timeout_ms: the worker core has failed it as a timeout)',
          at_unix_ms: Date.now(),
        });
        return;
      }
      // Payloads are built only for listeners (an idle emitter costs no allocation per step).
      if (this.heard(EventNames.STEP_COMPLETION_SENT)) {
        this.emitter.publish(EventNames.STEP_COMPLETION_SENT, { event_id: event.event_id, success: kind === 'succeeded' });
      }
      const outcome = kind === 'succeeded' ? EventNames.STEP_EXECUTION_COMPLETED : EventNames.STEP_EXECUTION_FAILED;
      if (this.heard(outcome)) this.emitter.publish(outcome, { event, result });
    } catch (error) {
      this.emitter.publish(EventNames.WORKER_ERROR, error);
    }
  }
}
