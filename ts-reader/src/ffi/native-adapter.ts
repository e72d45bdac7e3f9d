/**
 * The adapter logic shared by Node, Bun and Deno: everything above the raw C calls. On the ring transport,
 * `pollStepEvents` and `completeStepEvent` touch shared memory only; FFI is crossed for set-up, control,
 * metrics and logs.
 */
import { LAYOUT_MAJOR } from '../ring/layout.ts';
import { RingTransport } from '../ring/transport.ts';
import type { FfiAdapter } from './adapter.ts';
import { FfiCallError, FfiError, FfiLibraryError, RingWriteError } from './errors.ts';
import type { NativeLibrary, RegionMapping } from './native.ts';
import type { RuntimeType } from './runtime.ts';
import type { BootstrapConfig, BootstrapResult, FfiDispatchMetrics, FfiStepEvent, Transport, WorkerLogRecord, WorkerStatus } from './types.ts';

/** The C ABI major this package was written against (`tasker_worker_abi_version() >> 16`). */
export const TASKER_WORKER_ABI_MAJOR = 1;

/** What the poller needs beyond the seed's interface; every adapter of this package provides it. */
export interface RingAwareAdapter extends FfiAdapter {
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
  /** Heartbeats, region size, producer liveness (maintenance ticks only). */
  maintainRing(): void;
  /** Buffered log records of the Rust worker core (FFI; maintenance ticks only). */
  pollWorkerLogs(): WorkerLogRecord[];
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

export abstract class NativeFfiAdapter implements RingAwareAdapter {
  readonly runtime: RuntimeType;
  /** The library file that was loaded. */
  readonly libraryPath: string;
  onCompletion: (() => void) | null = null;
  protected readonly native: NativeLibrary;
  private ring: RingTransport | null = null;
  private mapping: RegionMapping | null = null;
  private workerTransport: Transport | null = null;
  private doorbell: string | null = null;
  private completionTimeoutMs = 30_000;
  /** Events delivered and not completed, with their (coarse) delivery time. */
  private readonly inFlight = new Map<string, number>();
  private clock = 0;
  private clockUses = 0;
  private clockStale = true;
  private refused = 0;
  private oversized = 0;
  private closed = false;

  protected constructor(runtime: RuntimeType, native: NativeLibrary) {
    this.runtime = runtime;
    this.native = native;
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
  }

  get transport(): Transport | null {
    return this.workerTransport;
  }

  get doorbellPath(): string | null {
    return this.doorbell;
  }

  pollStepEvents(): FfiStepEvent | null {
    const ring = this.ring;
    let event: FfiStepEvent | null;
    if (ring !== null) {
      // The empty poll: one Atomics.load of the producer position, no FFI call.
      if (!ring.hasPending()) {
        this.clockStale = true;
        return null;
      }
      event = ring.nextEvent();
    } else {
      this.assertOpen();
      const text = call('poll_step_events', () => this.native.callJson('poll_step_events'));
      if (text === null) return null;
      event = parseJson<FfiStepEvent>(text, 'poll_step_events');
    }
    if (event === null) {
      this.clockStale = true;
      return null;
    }
    // A coarse delivery clock (it only ages entries out after the completion timeout): read after an idle
    // poll and every 256 events, not per event.
    if (this.clockStale || ++this.clockUses >= 256) {
      this.clock = Date.now();
      this.clockUses = 0;
      this.clockStale = false;
    }
    this.inFlight.set(event.event_id, this.clock);
    return event;
  }

  completeStepEvent(eventId: string, resultJson: string): void {
    this.assertOpen();
    this.inFlight.delete(eventId);
    const ring = this.ring;
    if (ring !== null) {
      try {
        ring.complete(eventId, resultJson);
      } catch (error) {
        if (!(error instanceof RingWriteError) || error.code !== 'MESSAGE_TOO_LARGE') throw error;
        // A result over max_message_size can never be written: send a failure for the step instead.
        this.oversized += 1;
        ring.complete(eventId, oversizedFailure(resultJson, error.message));
      }
    } else {
      const accepted = call('complete_step_event', () => this.native.completeStepEvent(eventId, resultJson));
      if (accepted !== 1) this.refused += 1;
    }
    this.onCompletion?.();
  }

  bootstrapWorker(config: BootstrapConfig): BootstrapResult {
    this.assertOpen();
    const text = call('bootstrap_worker', () => this.native.bootstrapWorker(JSON.stringify(config ?? {})));
    const result = parseJson<BootstrapResult & { status: string; message?: string }>(text, 'bootstrap_worker');
    if (result.status !== 'started' && result.status !== 'already_running') {
      throw new FfiCallError(`bootstrap_worker failed: ${result.message ?? text}`, result, 'BOOTSTRAP_FAILED');
    }
    if (typeof config?.completion_timeout_ms === 'number') this.completionTimeoutMs = config.completion_timeout_ms;
    const status = result.status === 'started' ? result : { ...this.getWorkerStatus(), ...result };
    this.attach(status.transport ?? 'ring', status.region_path ?? null, status.doorbell_path ?? null, result.layout_major);
    return result;
  }

  getWorkerStatus(): WorkerStatus {
    this.assertOpen();
    return parseJson<WorkerStatus>(
      call('get_worker_status', () => this.native.callJson('get_worker_status')),
      'get_worker_status',
    );
  }

  stopWorker(): string {
    this.assertOpen();
    const text = call('stop_worker', () => this.native.callJson('stop_worker'));
    this.detach();
    return text ?? 'Worker stopped';
  }

  transitionToGracefulShutdown(): string {
    this.assertOpen();
    return call('transition_to_graceful_shutdown', () => this.native.callJson('transition_to_graceful_shutdown')) ?? 'Transitioning to graceful shutdown';
  }

  isWorkerRunning(): boolean {
    if (this.closed) return false;
    return call('is_worker_running', () => this.native.isWorkerRunning());
  }

  getFfiDispatchMetrics(): FfiDispatchMetrics {
    this.assertOpen();
    const metrics = parseJson<FfiDispatchMetrics>(
      call('get_ffi_dispatch_metrics', () => this.native.callJson('get_ffi_dispatch_metrics')),
      'get_ffi_dispatch_metrics',
    );
    if (this.ring !== null && !this.ring.isClosed) metrics.ring = this.ring.metrics();
    return metrics;
  }

  checkStarvationWarnings(): void {
    this.assertOpen();
    call('check_starvation_warnings', () => this.native.checkStarvationWarnings());
  }

  cleanupTimeouts(): void {
    this.assertOpen();
    call('cleanup_timeouts', () => this.native.cleanupTimeouts());
    // Events the worker has failed as timeouts are no longer in flight here either.
    const expired = Date.now() - this.completionTimeoutMs;
    for (const [id, at] of this.inFlight) {
      if (at > expired) break; // insertion order is delivery order
      this.inFlight.delete(id);
    }
  }

  inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Completions refused by the library (ffi transport) and results replaced because they were too large. */
  completionStats(): { refused: number; oversized: number; queued: number } {
    return { refused: this.refused, oversized: this.oversized, queued: this.ring?.queuedCount() ?? 0 };
  }

  hasPendingEvents(): boolean {
    return this.ring !== null ? this.ring.hasPending() : this.workerTransport === 'ffi';
  }

  prepareSleep(): boolean {
    return this.ring !== null ? this.ring.prepareSleep() : false;
  }

  wake(): void {
    this.ring?.wake();
  }

  flushCompletions(): number {
    return this.ring !== null ? this.ring.flush() : 0;
  }

  maintainRing(): void {
    this.ring?.maintain();
  }

  pollWorkerLogs(): WorkerLogRecord[] {
    if (this.closed || !this.native.hasLogs) return [];
    const text = call('poll_worker_logs', () => this.native.callJson('poll_worker_logs'));
    return text === null ? [] : parseJson<WorkerLogRecord[]>(text, 'poll_worker_logs');
  }

  /**
   * Closes the ring reader, then releases the mapping, then the library handle. The library stays loaded
   * while its worker runs (its threads execute its code): stop the worker first to unload it. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.detach();
    this.closed = true;
    let running = true;
    try {
      running = this.native.isWorkerRunning();
    } catch {
      running = true;
    }
    if (!running) this.native.unload();
  }

  private attach(transport: Transport, regionPath: string | null, doorbellPath: string | null, layoutMajor?: number): void {
    this.workerTransport = transport;
    this.doorbell = transport === 'ring' ? doorbellPath : null;
    if (transport !== 'ring') {
      this.detach();
      this.workerTransport = transport;
      return;
    }
    if (this.ring !== null && !this.ring.isClosed) return; // already reading this worker's region
    if (layoutMajor !== undefined && layoutMajor !== LAYOUT_MAJOR) {
      throw new FfiCallError(`worker region layout ${layoutMajor}.x is not ${LAYOUT_MAJOR}.x`, undefined, 'RING_UNAVAILABLE');
    }
    const mapping = call('map_ring_region', () => this.native.mapRingRegion());
    if (mapping === null) throw new FfiCallError('map_ring_region returned NULL: no running ring worker', undefined, 'RING_UNAVAILABLE');
    try {
      this.ring = new RingTransport(mapping.buffer, { regionPath });
      this.mapping = mapping;
    } catch (error) {
      this.native.releaseRingRegion(mapping.base);
      throw error;
    }
  }

  /** Reader first, mapping second: no view is used after its release. */
  private detach(): void {
    if (this.ring !== null) {
      this.ring.close();
      this.ring = null;
    }
    if (this.mapping !== null) {
      this.native.releaseRingRegion(this.mapping.base);
      this.mapping = null;
    }
    this.doorbell = null;
  }

  private assertOpen(): void {
    if (this.closed) throw new FfiCallError('the adapter is closed', undefined, 'CLOSED');
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
