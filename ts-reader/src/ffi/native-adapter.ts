/**
 * The adapter logic shared by Node, Bun and Deno: everything above the raw C calls. On the ring transport,
 * `pollStepEvents` and `completeStepEvent` touch shared memory only; FFI is crossed for set-up, control,
 * metrics and logs.
 *
 * The native handle, the ring transport (and through it every view of shared memory) and the mapping live
 * in `#private` fields: no code outside this class can reach a view, so none can read one after `close()`
 * released the mapping (a SIGSEGV in every runtime).
 */

import { EventDecodeError, FfiCallError, FfiError, FfiLibraryError, RingWriteError, UnsupportedByWorkerError, WorkerFaultError } from '../errors.ts';
import type {
  BootstrapConfig,
  BootstrapResult,
  DomainEventBatch,
  FfiDispatchMetrics,
  FfiStepEvent,
  RefusalBatch,
  StepCheckpoint,
  Transport,
  WorkerLogRecord,
  WorkerStatus,
} from '../protocol.ts';
import { LAYOUT_MAJOR, supportsClaims } from '../ring/layout.ts';
import { RingTransport } from '../ring/transport.ts';
import { isCanonicalEventId } from '../ring/writer.ts';
import type { RuntimeType } from '../runtime.ts';
import type { FfiAdapter } from './adapter.ts';
import { removeAtExit } from './exit-cleanup.ts';
import { InFlightIds } from './in-flight.ts';
import type { NativeLibrary, RegionMapping } from './native.ts';

/** The C ABI major this package was written against (`tasker_worker_abi_version() >> 16`). */
export const TASKER_WORKER_ABI_MAJOR = 1;

/** What the poller needs beyond the seed's interface; every adapter of this package provides it. */
export interface RingAwareAdapter extends FfiAdapter {
  /** True when taken; false at once when the event is not in flight here (see `NativeFfiAdapter`). */
  completeStepEvent(eventId: string, resultJson: string): boolean;
  /**
   * Gives events this adapter delivered and will not run back to their source, without using an attempt
   * (layout 1.1). Returns how many were given back; the others were not in flight here and are refused at
   * once. Throws `UnsupportedByWorkerError` when the worker core cannot take it (nothing sent).
   */
  giveBackStepEvents(eventIds: readonly string[]): number;
  /** The step yields with `checkpoint` (layout 1.1): true when taken, false at once when not in flight. */
  checkpointYieldStepEvent(eventId: string, checkpoint: StepCheckpoint): boolean;
  /** Whether the worker core this adapter talks to takes give-backs / checkpoints (see `giveBackStepEvents`). */
  supports(feature: 'give_back' | 'checkpoint'): boolean;
  readonly runtime: RuntimeType;
  readonly transport: Transport | null;
  readonly doorbellPath: string | null;
  /** Events read and not completed (the poller's backpressure). */
  inFlightCount(): number;
  /** Whether events are waiting: one `Atomics.load` on the ring; always true on the ffi transport. */
  hasPendingEvents(): boolean;
  /** Ring: sets the sleeping flag; false when events arrived meanwhile. Always false on ffi. */
  prepareSleep(): boolean;
  wake(): void;
  /** Writes queued completions; returns how many still wait for room. */
  flushCompletions(): number;
  /** Completions queued for room in the completions ring (no FFI, no shared memory). */
  completionsQueued(): number;
  /** Heartbeats, region size, producer liveness (maintenance ticks only). */
  maintainRing(): void;
  /**
   * Throws `WorkerFaultError` when the worker core this adapter started has stopped on its own (one FFI
   * call while it runs; maintenance ticks only).
   */
  checkWorker(): void;
  /** Buffered log records of the Rust worker core (FFI; maintenance ticks only). */
  pollWorkerLogs(): WorkerLogRecord[];
  /**
   * Completions the worker core (or its step store) refused after `completeStepEvent` had returned true,
   * since the last call (FFI; maintenance ticks only).
   */
  pollCompletionRefusals(): RefusalBatch;
  /** Called after every completion (the poller uses it to refill capacity at once). */
  onCompletion: (() => void) | null;
}

export function isRingAwareAdapter(adapter: FfiAdapter): adapter is RingAwareAdapter {
  return typeof (adapter as Partial<RingAwareAdapter>).inFlightCount === 'function';
}

function parseJson<T>(text: string | null, what: string): T {
  if (text === null) throw new FfiCallError(`${what} returned NULL`, undefined, 'NULL_RESULT');
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new FfiCallError(`${what} returned invalid JSON: ${text.slice(0, 120)}`, error, 'INVALID_JSON');
  }
}

/** Wraps a throwing call into the seed's `FfiCallError('<fn> failed', cause)`, keeping typed errors as they are. */
function call<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (error) {
    if (error instanceof FfiError) throw error;
    throw new FfiCallError(`${what} failed: ${(error as Error).message}`, error);
  }
}

/**
 * The adapter's internals, for this repository's benchmarks only (they time the layers under the adapter).
 * Not exported by the package.
 */
export let adapterInternals: (adapter: NativeFfiAdapter) => { ring: RingTransport | null; native: NativeLibrary };

export abstract class NativeFfiAdapter implements RingAwareAdapter {
  readonly runtime: RuntimeType;
  /** The library file that was loaded. */
  readonly libraryPath: string;
  /** Its `tasker_worker_abi_version()`: C ABI major << 16 | region layout major << 8 | layout minor. */
  readonly abiVersion: number;
  onCompletion: (() => void) | null = null;
  readonly #native: NativeLibrary;
  #ring: RingTransport | null = null;
  #mapping: RegionMapping | null = null;
  #transport: Transport | null = null;
  #doorbell: string | null = null;
  #completionTimeoutMs = 30_000;
  /** Events delivered and not completed, with their (coarse) delivery time. */
  readonly #inFlight = new InFlightIds();
  #clock = 0;
  #clockUses = 0;
  #clockStale = true;
  #refused = 0;
  #oversized = 0;
  #givenBack = 0;
  #checkpoints = 0;
  #closed = false;
  #unloaded = false;
  /** A worker this adapter bootstrapped (or attached to) and has not stopped: `close()` stops it. */
  #ownsWorker = false;
  /** The worker was seen stopped without a fault (a finished graceful shutdown): no more checks. */
  #workerEnded = false;
  /** Cancels the unlink-at-exit of the attached region and doorbell files. */
  #cancelExitRemoval: (() => void) | null = null;

  static {
    adapterInternals = (adapter) => ({ ring: adapter.#ring, native: adapter.#native });
  }

  protected constructor(runtime: RuntimeType, native: NativeLibrary) {
    this.runtime = runtime;
    this.#native = native;
    this.libraryPath = native.path;
    const abi = native.abiVersion();
    const fail = (why: string) => {
      native.unload();
      return new FfiLibraryError(`${native.path}: ${why}`, undefined, 'ABI_MISMATCH');
    };
    if (abi === null) throw fail('the library does not export tasker_worker_abi_version: it predates this package; rebuild it');
    const abiMajor = abi >>> 16;
    const layoutMajor = (abi >>> 8) & 0xff;
    if (abiMajor !== TASKER_WORKER_ABI_MAJOR) {
      throw fail(`C ABI ${abiMajor} != ${TASKER_WORKER_ABI_MAJOR} expected by @tasker-systems/worker; use matching versions of the package and the library`);
    }
    if (layoutMajor !== LAYOUT_MAJOR) {
      throw fail(`region layout ${layoutMajor}.x != ${LAYOUT_MAJOR}.x read by @tasker-systems/worker; use matching versions`);
    }
    this.abiVersion = abi;
  }

  get transport(): Transport | null {
    return this.#transport;
  }

  get doorbellPath(): string | null {
    return this.#doorbell;
  }

  pollStepEvents(): FfiStepEvent | null {
    const ring = this.#ring;
    let event: FfiStepEvent | null;
    if (ring !== null) {
      // The empty poll: one Atomics.load of the producer position, no FFI call.
      if (!ring.hasPending()) {
        this.#clockStale = true;
        return null;
      }
      event = ring.nextEvent();
    } else {
      this.#assertOpen();
      const text = call('poll_step_events', () => this.#native.callJson('poll_step_events'));
      if (text === null) return null;
      event = parseJson<FfiStepEvent>(text, 'poll_step_events');
      if (event !== null && (typeof event !== 'object' || typeof event.event_id !== 'string')) {
        throw new EventDecodeError('poll_step_events returned an event without an event_id', text.slice(0, 120));
      }
    }
    if (event === null) {
      this.#clockStale = true;
      return null;
    }
    // A coarse delivery clock, read after an idle poll and every 256 events, not per event. It is never
    // later than the real delivery, so an entry ages out here no later than the worker core times it out.
    if (this.#clockStale || ++this.#clockUses >= 256) {
      this.#clock = Date.now();
      this.#clockUses = 0;
      this.#clockStale = false;
    }
    this.#inFlight.set(event.event_id, this.#clock);
    return event;
  }

  /**
   * Sends a step's result. Returns false at once, sending nothing, when the event is not in flight here:
   * never read through this adapter, already completed, or read longer ago than `completion_timeout_ms`
   * (the worker core has failed it as a timeout, or is about to). On the ring transport true means written
   * (or queued in memory for room); a refusal the worker core decides later (a claim its step store gave to
   * another worker) is counted in the metrics and reported by `pollCompletionRefusals`. On the ffi
   * transport the library answers at once. A malformed event id throws `FfiCallError('INVALID_ARGUMENT')`.
   */
  completeStepEvent(eventId: string, resultJson: string): boolean {
    this.#assertOpen();
    const ring = this.#ring;
    if (ring !== null) {
      const readAt = this.#inFlight.take(eventId);
      if (readAt === undefined) {
        if (!isCanonicalEventId(eventId)) {
          throw new FfiCallError(`event id '${eventId}' is not a canonical lowercase UUID`, undefined, 'INVALID_ARGUMENT');
        }
        this.#refused += 1;
        return false;
      }
      if (Date.now() - readAt >= this.#completionTimeoutMs) {
        this.#refused += 1;
        this.onCompletion?.();
        return false;
      }
      try {
        ring.complete(eventId, resultJson);
      } catch (error) {
        if (!(error instanceof RingWriteError) || error.code !== 'MESSAGE_TOO_LARGE') throw error;
        // A result over max_message_size can never be written: send a failure for the step instead.
        this.#oversized += 1;
        ring.complete(eventId, oversizedFailure(resultJson, error.message));
      }
      this.onCompletion?.();
      return true;
    }
    this.#inFlight.delete(eventId);
    const accepted = call('complete_step_event', () => this.#native.completeStepEvent(eventId, resultJson)) === 1;
    if (!accepted) this.#refused += 1;
    this.onCompletion?.();
    return accepted;
  }

  /**
   * Gives events back to their source as not run, without using an attempt, as a graceful stop does
   * (layout-spec.md section 7, GIVE_BACK): for events this adapter delivered and no handler will run (a loop
   * over `events()` that ended early). Returns how many were given back. An id not in flight here (never read,
   * already completed or given back, read longer ago than `completion_timeout_ms`) is refused at once and not
   * sent, as `completeStepEvent` answers false. Ring: GIVE_BACK records, in order with the completions (a
   * refusal the worker core decides later is reported by `pollCompletionRefusals`); ffi: the library's
   * `give_back_step_event` answers each id. `UnsupportedByWorkerError` when the worker core cannot take
   * give-backs (a layout 1.0 region, a library without the export): nothing sent, the events stay in flight.
   * A malformed id: `FfiCallError('INVALID_ARGUMENT')`, nothing sent.
   */
  giveBackStepEvents(eventIds: readonly string[]): number {
    this.#assertOpen();
    this.#require('give_back');
    for (const id of eventIds) checkEventId(id);
    const ring = this.#ring;
    let given = 0;
    if (ring !== null) {
      // Sent first, then out of flight: a throw leaves every event in flight, as it was.
      const now = Date.now();
      const take: string[] = [];
      const stale: string[] = [];
      for (const id of new Set(eventIds)) {
        const readAt = this.#inFlight.get(id);
        if (readAt !== undefined && now - readAt < this.#completionTimeoutMs) take.push(id);
        else if (readAt !== undefined) stale.push(id);
      }
      if (take.length > 0) ring.giveBack(take);
      for (const id of take) this.#inFlight.delete(id);
      for (const id of stale) this.#inFlight.delete(id);
      given = take.length;
      this.#refused += new Set(eventIds).size - given;
    } else {
      const giveBack = this.#native.giveBackStepEvent as (eventId: string) => number;
      for (const id of new Set(eventIds)) {
        this.#inFlight.delete(id);
        if (call('give_back_step_event', () => giveBack(id)) === 1) given += 1;
        else this.#refused += 1;
      }
    }
    this.#givenBack += given;
    if (eventIds.length > 0) this.onCompletion?.();
    return given;
  }

  /**
   * The step yields with `checkpoint` (layout-spec.md section 7, CHECKPOINT): the store persists it, the
   * attempt is not counted, and the step is dispatched again with `workflow_step.checkpoint` set to it. The
   * event leaves flight as with a completion. True when taken; false at once when the event is not in flight
   * here (as `completeStepEvent`). `UnsupportedByWorkerError` as for `giveBackStepEvents`; a malformed id or a
   * checkpoint that is not a JSON object: `FfiCallError('INVALID_ARGUMENT')`; a checkpoint larger than
   * `max_message_size`: `RingWriteError('MESSAGE_TOO_LARGE')` (the event stays in flight).
   */
  checkpointYieldStepEvent(eventId: string, checkpoint: StepCheckpoint): boolean {
    this.#assertOpen();
    this.#require('checkpoint');
    checkEventId(eventId);
    const json = checkpointJson(checkpoint);
    const ring = this.#ring;
    let taken: boolean;
    if (ring !== null) {
      const readAt = this.#inFlight.get(eventId);
      taken = readAt !== undefined && Date.now() - readAt < this.#completionTimeoutMs;
      if (taken) ring.checkpoint(eventId, json);
      if (readAt !== undefined) this.#inFlight.delete(eventId);
    } else {
      this.#inFlight.delete(eventId);
      const yieldStep = this.#native.checkpointYieldStepEvent as (eventId: string, checkpointJson: string) => number;
      taken = call('checkpoint_yield_step_event', () => yieldStep(eventId, json)) === 1;
    }
    if (taken) this.#checkpoints += 1;
    else this.#refused += 1;
    this.onCompletion?.();
    return taken;
  }

  /**
   * Whether the worker core takes give-backs or checkpoints: on the ring, a region of layout 1.1 or later;
   * on ffi, a library with the export. False before a bootstrap.
   */
  supports(feature: 'give_back' | 'checkpoint'): boolean {
    if (this.#closed) return false;
    if (this.#ring !== null) return supportsClaims(this.#ring.layoutMinor);
    if (this.#transport !== 'ffi') return false;
    return (feature === 'give_back' ? this.#native.giveBackStepEvent : this.#native.checkpointYieldStepEvent) !== null;
  }

  bootstrapWorker(config: BootstrapConfig): BootstrapResult {
    this.#assertOpen();
    const text = call('bootstrap_worker', () => this.#native.bootstrapWorker(JSON.stringify(config ?? {})));
    const result = parseJson<BootstrapResult & { status: string; message?: string }>(text, 'bootstrap_worker');
    if (result.status !== 'started' && result.status !== 'already_running') {
      throw new FfiCallError(`bootstrap_worker failed: ${result.message ?? text}`, result, 'BOOTSTRAP_FAILED');
    }
    if (typeof config?.completion_timeout_ms === 'number') this.#completionTimeoutMs = config.completion_timeout_ms;
    this.#ownsWorker = true;
    this.#workerEnded = false;
    const status = result.status === 'started' ? result : { ...this.getWorkerStatus(), ...result };
    this.#attach(status.transport ?? 'ring', status.region_path ?? null, status.doorbell_path ?? null, result.layout_major);
    return result;
  }

  getWorkerStatus(): WorkerStatus {
    this.#assertOpen();
    return parseJson<WorkerStatus>(
      call('get_worker_status', () => this.#native.callJson('get_worker_status')),
      'get_worker_status',
    );
  }

  stopWorker(): string {
    this.#assertOpen();
    const text = call('stop_worker', () => this.#native.callJson('stop_worker'));
    this.#ownsWorker = false;
    this.#detach();
    return text ?? 'Worker stopped';
  }

  transitionToGracefulShutdown(): string {
    this.#assertOpen();
    return call('transition_to_graceful_shutdown', () => this.#native.callJson('transition_to_graceful_shutdown')) ?? 'Transitioning to graceful shutdown';
  }

  /**
   * Whether the process's worker core runs, drains, or (stopped) still closes its source: status `closing`.
   * After `close()` too: the library is asked while it is loaded.
   */
  isWorkerRunning(): boolean {
    if (this.#unloaded) return false;
    return call('is_worker_running', () => this.#native.isWorkerRunning());
  }

  getFfiDispatchMetrics(): FfiDispatchMetrics {
    this.#assertOpen();
    const metrics = parseJson<FfiDispatchMetrics>(
      call('get_ffi_dispatch_metrics', () => this.#native.callJson('get_ffi_dispatch_metrics')),
      'get_ffi_dispatch_metrics',
    );
    if (this.#ring !== null && !this.#ring.isClosed) metrics.ring = this.#ring.metrics();
    return metrics;
  }

  checkStarvationWarnings(): void {
    this.#assertOpen();
    call('check_starvation_warnings', () => this.#native.checkStarvationWarnings());
  }

  cleanupTimeouts(): void {
    this.#assertOpen();
    call('cleanup_timeouts', () => this.#native.cleanupTimeouts());
    // Events the worker has failed as timeouts are no longer in flight here either.
    this.#inFlight.expire(Date.now() - this.#completionTimeoutMs);
  }

  inFlightCount(): number {
    return this.#inFlight.size;
  }

  /**
   * The oldest event in flight here and the read times (ms since the epoch, from the coarse delivery clock)
   * of the oldest and the newest, or null when none is in flight. Walks the in-flight set: metrics only.
   */
  inFlightRange(): { oldestId: string; oldestReadAt: number; newestReadAt: number } | null {
    return this.#inFlight.range();
  }

  /**
   * The library's `client_call` (a step-store client request as JSON, its JSON answer), or null when the
   * library predates it.
   */
  clientCall(requestJson: string): string | null {
    this.#assertOpen();
    const clientCall = this.#native.clientCall;
    return clientCall === null ? null : call('client_call', () => clientCall(requestJson));
  }

  /**
   * A record into the worker core's tracing (`log_message`: level 0 error .. 4 trace, `fieldsJson` a JSON
   * object or null); false when the library predates it (nothing logged).
   */
  logMessage(level: number, message: string, fieldsJson: string | null): boolean {
    this.#assertOpen();
    const logMessage = this.#native.logMessage;
    if (logMessage === null) return false;
    call('log_message', () => logMessage(level, message, fieldsJson));
    return true;
  }

  /**
   * `refused`: completions answered false (not in flight here, or refused by the library on the ffi
   * transport); `oversized`: results replaced by a failure because they were too large; `queued`:
   * completions waiting in memory for room in the completions ring.
   */
  completionStats(): { refused: number; oversized: number; queued: number; givenBack: number; checkpoints: number } {
    return {
      refused: this.#refused,
      oversized: this.#oversized,
      queued: this.#ring?.queuedCount() ?? 0,
      givenBack: this.#givenBack,
      checkpoints: this.#checkpoints,
    };
  }

  hasPendingEvents(): boolean {
    return this.#ring !== null ? this.#ring.hasPending() : this.#transport === 'ffi';
  }

  prepareSleep(): boolean {
    return this.#ring !== null ? this.#ring.prepareSleep() : false;
  }

  wake(): void {
    this.#ring?.wake();
  }

  flushCompletions(): number {
    return this.#ring !== null ? this.#ring.flush() : 0;
  }

  completionsQueued(): number {
    return this.#ring !== null ? this.#ring.queuedCount() : 0;
  }

  maintainRing(): void {
    // A worker core this adapter started runs in this process and checks the region's size itself (every
    // 100 ms; a shrunk file fails it, and `checkWorker` reports that): a second `stat` here is the idle
    // tick's dearest call (42 us cold on this VM), so it is left to the worker core.
    this.#ring?.maintain(!this.#ownsWorker);
  }

  checkWorker(): void {
    if (this.#closed || !this.#ownsWorker || this.#workerEnded) return;
    if (call('is_worker_running', () => this.#native.isWorkerRunning())) return;
    const status = this.getWorkerStatus();
    if (status.error) throw new WorkerFaultError(status.error.phase, status.error.reason);
    this.#workerEnded = true;
  }

  pollWorkerLogs(): WorkerLogRecord[] {
    if (this.#closed || !this.#native.hasLogs) return [];
    const text = call('poll_worker_logs', () => this.#native.callJson('poll_worker_logs'));
    return text === null ? [] : parseJson<WorkerLogRecord[]>(text, 'poll_worker_logs');
  }

  pollCompletionRefusals(): RefusalBatch {
    if (this.#closed || !this.#native.hasRefusals) return { refusals: [], dropped: 0 };
    const text = call('poll_completion_refusals', () => this.#native.callJson('poll_completion_refusals'));
    return text === null ? { refusals: [], dropped: 0 } : parseJson<RefusalBatch>(text, 'poll_completion_refusals');
  }

  /**
   * The worker core's domain events since the last call (`poll_domain_events`: one FFI call; the first turns
   * the library's recording on for the life of the process), or null when the library predates them.
   */
  pollDomainEvents(): DomainEventBatch | null {
    if (this.#closed || !this.#native.hasDomainEvents) return null;
    const text = call('poll_domain_events', () => this.#native.callJson('poll_domain_events'));
    return text === null ? { events: [], dropped: 0 } : parseJson<DomainEventBatch>(text, 'poll_domain_events');
  }

  /**
   * Stops the worker core this adapter started (if it still runs: `close()` never leaves one running
   * unseen), closes the ring reader, releases the mapping, then unloads the library unless a worker still
   * runs in it: another adapter's, or the stopped one still closing its source in the background (status
   * `closing`; `is_worker_running` stays true until it is done), since its threads execute the library's
   * code. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    let running: boolean;
    try {
      running = this.#native.isWorkerRunning();
      if (running && this.#ownsWorker) {
        this.#native.callJson('stop_worker');
        // Still true while the stopped worker's source closes in the background (status `closing`).
        running = this.#native.isWorkerRunning();
      }
    } catch {
      running = true; // cannot tell: keep the library loaded
    }
    this.#ownsWorker = false;
    this.#detach();
    this.#closed = true;
    if (!running) {
      this.#native.unload();
      this.#unloaded = true;
    }
  }

  /** `close()`, for `using adapter = createFfiAdapter()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #attach(transport: Transport, regionPath: string | null, doorbellPath: string | null, layoutMajor?: number): void {
    this.#transport = transport;
    this.#doorbell = transport === 'ring' ? doorbellPath : null;
    if (transport !== 'ring') {
      this.#detach();
      this.#transport = transport;
      return;
    }
    if (this.#ring !== null && !this.#ring.isClosed) return; // already reading this worker's region
    if (layoutMajor !== undefined && layoutMajor !== LAYOUT_MAJOR) {
      throw new FfiCallError(`worker region layout ${layoutMajor}.x is not ${LAYOUT_MAJOR}.x`, undefined, 'RING_UNAVAILABLE');
    }
    const mapping = call('map_ring_region', () => this.#native.mapRingRegion());
    if (mapping === null) throw new FfiCallError('map_ring_region returned NULL: no running ring worker', undefined, 'RING_UNAVAILABLE');
    try {
      this.#ring = new RingTransport(mapping.buffer, { regionPath });
      this.#mapping = mapping;
    } catch (error) {
      this.#native.releaseRingRegion(mapping);
      throw error;
    }
    // A process that exits without stop() must not leave its region behind (the files only: see exit-cleanup.ts).
    this.#cancelExitRemoval = removeAtExit([regionPath ?? '', doorbellPath ?? '']);
  }

  /** Reader first, mapping second: no view is used after its release. */
  #detach(): void {
    if (this.#ring !== null) {
      this.#ring.close();
      this.#ring = null;
    }
    if (this.#mapping !== null) {
      this.#native.releaseRingRegion(this.#mapping);
      this.#mapping = null;
    }
    this.#cancelExitRemoval?.();
    this.#cancelExitRemoval = null;
    this.#doorbell = null;
  }

  #require(feature: 'give_back' | 'checkpoint'): void {
    if (this.supports(feature)) return;
    const what = feature === 'give_back' ? 'give_back_step_event' : 'checkpoint_yield_step_event';
    let why: string;
    if (this.#ring !== null) why = `the worker's region is layout 1.${this.#ring.layoutMinor}; this needs 1.1 (upgrade libtasker_worker)`;
    else if (this.#transport === 'ffi') why = `${this.libraryPath} does not export ${what} (upgrade libtasker_worker)`;
    else why = 'no worker is bootstrapped';
    throw new UnsupportedByWorkerError(feature, why);
  }

  #assertOpen(): void {
    if (this.#closed) throw new FfiCallError('the adapter is closed', undefined, 'CLOSED');
  }
}

function checkEventId(eventId: string): void {
  if (!isCanonicalEventId(eventId)) {
    throw new FfiCallError(`event id '${eventId}' is not a canonical lowercase UUID`, undefined, 'INVALID_ARGUMENT');
  }
}

/** A checkpoint's JSON: a JSON object, or `FfiCallError('INVALID_ARGUMENT')`. */
function checkpointJson(checkpoint: StepCheckpoint): string {
  if (typeof checkpoint !== 'object' || checkpoint === null || Array.isArray(checkpoint)) {
    throw new FfiCallError('a checkpoint is a JSON object (step_uuid, cursor, items_processed, ...)', undefined, 'INVALID_ARGUMENT');
  }
  try {
    return JSON.stringify(checkpoint);
  } catch (error) {
    throw new FfiCallError(`the checkpoint is not serialisable: ${(error as Error).message}`, error, 'INVALID_ARGUMENT');
  }
}

/** A failure result for a step whose real result exceeded the ring's max_message_size. */
function oversizedFailure(resultJson: string, why: string): string {
  let stepUuid = '';
  const match = /"step_uuid"\s*:\s*"([^"]{1,64})"/.exec(resultJson.slice(0, 4096));
  if (match?.[1]) stepUuid = match[1];
  else {
    try {
      stepUuid = String((JSON.parse(resultJson) as { step_uuid?: unknown }).step_uuid ?? '');
    } catch {
      stepUuid = '';
    }
  }
  return JSON.stringify({
    step_uuid: stepUuid,
    success: false,
    result: null,
    status: 'error',
    metadata: { original_result_chars: resultJson.length },
    error: { message: `step result too large for the completions ring: ${why}`, error_type: 'result_too_large', retryable: false },
  });
}
