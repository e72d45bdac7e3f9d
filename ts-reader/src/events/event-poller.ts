/**
 * EventPoller: the seed's 10 ms polling loop, on the ring. The tick always runs (it is the contract and it
 * drives maintenance); the doorbell and capacity freed by completions only add polls between ticks. Each
 * poll drains ready events up to `maxInFlight` (backpressure before the read: unread events stay in the
 * ring and their timeout clock has not started) and `maxEventsPerPoll` (default unlimited). Maintenance
 * counts ticks only: starvation check every `starvationCheckInterval` ticks, cleanup every `cleanupInterval`,
 * metrics every `metricsInterval`, and on the ring its own maintenance (region size, producer liveness,
 * heartbeats) every `ringMaintenanceInterval`.
 */

import { DoorbellError, EventDecodeError, type FfiError, isFatalError, RingSealedError, UnsupportedByWorkerError, WorkerFaultError } from '../errors.ts';
import type { FfiAdapter } from '../ffi/adapter.ts';
import { isRingAwareAdapter, type RingAwareAdapter } from '../ffi/native-adapter.ts';
import { checkOptionKeys } from '../options.ts';
import type { CompletionRefusal, FfiDispatchMetrics, FfiStepEvent, StepCheckpoint, WorkerLogRecord } from '../protocol.ts';
import { DoorbellClient, doorbellError } from '../ring/doorbell.ts';
import { eventIterable, type IteratorSource, type PollerEnd } from './event-iterator.ts';

/** Timer functions (a seam for tests; the defaults are the runtime's). */
export interface PollerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Schedules an extra poll soon (default `setImmediate`, else `setTimeout(fn, 0)`). */
  soon(fn: () => void): void;
}

export interface EventPollerOptions {
  /** Most events read and not completed (default 1000). Backpressure is applied before reading. */
  maxInFlight?: number;
  /**
   * Most events one poll reads (default: unlimited, i.e. up to `maxInFlight`): an integer >= 1, or
   * `Infinity`. On the ffi transport the rest waits for the next tick, so `1` is the seed's design (one
   * event per 10 ms tick) and `100` tasker-core's; on the ring transport a poll that stops at the limit
   * schedules the next one at once, so the limit only bounds how long a poll holds the event loop. A plain
   * seed adapter always gets one event per poll.
   */
  maxEventsPerPoll?: number;
  /** Metrics every this many ticks (default 100, about 1 s). */
  metricsInterval?: number;
  /**
   * Ring maintenance every this many ticks (default 10, about 100 ms, the Rust worker's own cadence):
   * heartbeats, the region size check (a truncated region would SIGBUS the next read) and the producer's
   * liveness, so a dead producer is reported (`RingPeerError('PEER_DEAD')`) within about 100 ms.
   */
  ringMaintenanceInterval?: number;
  /** Use the worker's doorbell to wake between ticks (default true on the ring transport). */
  doorbell?: boolean;
  timers?: Partial<PollerTimers>;
  /**
   * A diagnostic hook (bench/end-to-end.ts `--legs`, issue 21): `doorbell()` is called first thing in each
   * doorbell callback, before the poll it triggers. Absent (the default), the callback only tests for it.
   */
  wakeTrace?: WakeTrace;
}

/** See `EventPollerOptions.wakeTrace`. */
export interface WakeTrace {
  doorbell(): void;
}

const OPTION_KEYS: readonly (keyof EventPollerOptions)[] = [
  'maxInFlight',
  'maxEventsPerPoll',
  'metricsInterval',
  'ringMaintenanceInterval',
  'doorbell',
  'timers',
  'wakeTrace',
];

const defaultTimers: PollerTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
  soon: (fn) => {
    if (typeof setImmediate === 'function') setImmediate(fn);
    else setTimeout(fn, 0);
  },
};

export interface PollerStats {
  /** Ticks of the regular interval (the seed's poll count; maintenance counts these). */
  ticks: number;
  /** Ticks that found the poller asleep on the doorbell with nothing to read or write: maintenance only. */
  quietTicks: number;
  /** Polls between ticks (doorbell, freed capacity, more data). */
  extraPolls: number;
  events: number;
  doorbellWakes: number;
  sleeps: number;
  /** Polls that stopped reading because `maxInFlight` events were in flight. */
  backpressured: number;
  errors: number;
  /** Completions the worker core refused after they were sent, as read by `onRefusal`. */
  refusals: number;
  /** Such refusals dropped unread (more than 1024 piled up between two reads). */
  refusalsDropped: number;
}

export class EventPoller {
  private intervalHandle: unknown = null;
  private active = false;
  private pollCount = 0;
  private polling = false;
  private extraScheduled = false;
  private sleeping = false;
  private backpressured = false;
  private failed: FfiError | null = null;
  private sealedBy: RingSealedError | null = null;
  /** Told once when the poller stops (the `events()` iterators). */
  private readonly endListeners = new Set<(end: PollerEnd) => void>();
  private doorbell: DoorbellClient | null = null;
  private readonly ring: RingAwareAdapter | null;
  private readonly timers: PollerTimers;
  private readonly maxInFlight: number;
  private readonly maxEventsPerPoll: number;
  private readonly metricsInterval: number;
  private readonly ringMaintenanceInterval: number;
  private readonly useDoorbell: boolean;
  private readonly wakeTrace: WakeTrace | null;
  private delivered = 0;
  private readonly statsCounters: PollerStats = {
    ticks: 0,
    quietTicks: 0,
    extraPolls: 0,
    events: 0,
    doorbellWakes: 0,
    sleeps: 0,
    backpressured: 0,
    errors: 0,
    refusals: 0,
    refusalsDropped: 0,
  };

  private onEventCallback: ((event: FfiStepEvent) => void) | null = null;
  private onErrorCallback: ((error: Error) => void) | null = null;
  private onMetricsCallback: ((metrics: FfiDispatchMetrics) => void) | null = null;
  private onLogCallback: ((record: WorkerLogRecord) => void) | null = null;
  private onStarvationCallback: ((metrics: FfiDispatchMetrics) => void) | null = null;
  /** Whether the metrics are read at all on a metrics tick (default: whenever a callback is set). */
  private metricsWanted: (() => boolean) | null = null;
  private onCycleCallback: ((events: number) => void) | null = null;
  private onRefusalCallback: ((refusal: CompletionRefusal) => void) | null = null;
  private onSealedCallback: ((sealed: RingSealedError) => void) | null = null;

  private readonly ffiAdapter: FfiAdapter;
  /** The regular tick, in ms. */
  private readonly pollingIntervalMs: number;
  /** Starvation check every this many ticks. */
  private readonly starvationCheckInterval: number;
  /** Timeout cleanup every this many ticks. */
  private readonly cleanupInterval: number;

  constructor(ffiAdapter: FfiAdapter, pollingIntervalMs = 10, starvationCheckInterval = 100, cleanupInterval = 1000, options: EventPollerOptions = {}) {
    for (const [name, value] of [
      ['pollingIntervalMs', pollingIntervalMs],
      ['starvationCheckInterval', starvationCheckInterval],
      ['cleanupInterval', cleanupInterval],
    ] as const) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`EventPoller: ${name} must be a positive number, got ${value}`);
    }
    checkOptionKeys('EventPoller', options, OPTION_KEYS);
    this.ffiAdapter = ffiAdapter;
    this.pollingIntervalMs = pollingIntervalMs;
    this.starvationCheckInterval = starvationCheckInterval;
    this.cleanupInterval = cleanupInterval;
    this.ring = isRingAwareAdapter(ffiAdapter) ? ffiAdapter : null;
    this.timers = { ...defaultTimers, ...options.timers };
    this.maxInFlight = options.maxInFlight ?? 1000;
    if (!(this.maxInFlight >= 1)) throw new RangeError(`EventPoller: maxInFlight must be at least 1, got ${this.maxInFlight}`);
    this.maxEventsPerPoll = options.maxEventsPerPoll ?? Number.POSITIVE_INFINITY;
    if (!(this.maxEventsPerPoll >= 1 && (Number.isInteger(this.maxEventsPerPoll) || this.maxEventsPerPoll === Number.POSITIVE_INFINITY))) {
      throw new RangeError(`EventPoller: maxEventsPerPoll must be an integer of at least 1 (or Infinity), got ${this.maxEventsPerPoll}`);
    }
    this.metricsInterval = options.metricsInterval ?? 100;
    this.ringMaintenanceInterval = options.ringMaintenanceInterval ?? 10;
    for (const [name, value] of [
      ['metricsInterval', this.metricsInterval],
      ['ringMaintenanceInterval', this.ringMaintenanceInterval],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`EventPoller: ${name} must be a positive integer, got ${value}`);
    }
    this.useDoorbell = options.doorbell ?? true;
    this.wakeTrace = options.wakeTrace ?? null;
  }

  /** Register callback for step events (called synchronously, once per event). */
  onStepEvent(callback: (event: FfiStepEvent) => void): void {
    this.onEventCallback = callback;
  }

  /**
   * Register callback for errors (typed `FfiError`s). A fatal one (a corrupt ring, a dead producer, a
   * truncated region, a worker core that stopped on its own) stops the poller first, so `isActive()` is
   * already false and `failure` is the error when the callback runs; others (a bad event, a throwing
   * callback, a doorbell that cannot be used) are reported and polling goes on.
   */
  onError(callback: (error: Error) => void): void {
    this.onErrorCallback = callback;
  }

  /**
   * Register callback for metrics updates (every `metricsInterval` ticks). With `wanted`, a metrics tick reads
   * the metrics (and calls this and `onStarvation`) only when it returns true.
   */
  onMetrics(callback: (metrics: FfiDispatchMetrics) => void, wanted?: () => boolean): void {
    this.onMetricsCallback = callback;
    this.metricsWanted = wanted ?? null;
  }

  /** Register a hook for the Rust worker core's log records (drained with the metrics). */
  onLog(callback: (record: WorkerLogRecord) => void): void {
    this.onLogCallback = callback;
  }

  /** Called when a metrics read shows starvation. */
  onStarvation(callback: (metrics: FfiDispatchMetrics) => void): void {
    this.onStarvationCallback = callback;
  }

  /** Called after every poll that delivered events, with their number. */
  onCycle(callback: (events: number) => void): void {
    this.onCycleCallback = callback;
  }

  /**
   * Called for each completion the worker core (or its step store) refused after `completeStepEvent` had
   * returned true (ring transport: an event it no longer has in flight, an invalid result; a store: a claim
   * that expired and moved on). Read with the metrics, every `metricsInterval` ticks, and at `stop()`.
   */
  onRefusal(callback: (refusal: CompletionRefusal) => void): void {
    this.onRefusalCallback = callback;
  }

  /**
   * Called once when the worker core sealed the events ring (layout 1.1): it is finishing its stop and
   * hands every unread event back to its source. The poller has stopped quietly (no `onError`: this is the
   * worker core's orderly end, not a failure) before the callback runs. A seal behind a fault of the worker
   * core (`status.error`) is not an orderly end: the poller fails with `WorkerFaultError` instead.
   */
  onSealed(callback: (sealed: RingSealedError) => void): void {
    this.onSealedCallback = callback;
  }

  /** The fatal error that stopped the poller, if one did (cleared by `start()`). */
  get failure(): FfiError | null {
    return this.failed;
  }

  /** The seal that stopped the poller, if the worker core sealed the events ring (cleared by `start()`). */
  get sealed(): RingSealedError | null {
    return this.sealedBy;
  }

  /**
   * Gives events delivered by this poller and never run back to their source, without using an attempt
   * (`RingAwareAdapter.giveBackStepEvents`). `UnsupportedByWorkerError` on a seed-style adapter.
   */
  giveBackStepEvents(eventIds: readonly string[]): number {
    return this.ringAdapter('give_back').giveBackStepEvents(eventIds);
  }

  /** The step yields with `checkpoint` (`RingAwareAdapter.checkpointYieldStepEvent`). */
  checkpointYieldStepEvent(eventId: string, checkpoint: StepCheckpoint): boolean {
    return this.ringAdapter('checkpoint').checkpointYieldStepEvent(eventId, checkpoint);
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.failed = null;
    this.sealedBy = null;
    if (this.ring) {
      this.ring.onCompletion = () => this.onCompletion();
      const path = this.ring.doorbellPath;
      if (this.useDoorbell && path) {
        const fallBack = (error: unknown) => this.report(doorbellError(path, error, this.pollingIntervalMs));
        try {
          this.doorbell = new DoorbellClient(path, () => this.onDoorbell(), fallBack);
        } catch (error) {
          fallBack(error);
        }
      }
    }
    this.intervalHandle = this.timers.setInterval(() => this.tick(), this.pollingIntervalMs);
    // First poll right away: events may be waiting already.
    this.scheduleExtra();
  }

  /** Stops polling. Clears the sleeping flag before closing the doorbell (design.md's order). */
  stop(_timeout = 5000): void {
    if (!this.active) return;
    this.active = false;
    if (this.intervalHandle !== null) {
      this.timers.clearInterval(this.intervalHandle);
      this.intervalHandle = null;
    }
    if (this.ring) {
      this.ring.onCompletion = null;
      this.ring.wake();
      try {
        this.ring.flushCompletions();
      } catch (error) {
        this.report(error as Error);
      }
    }
    this.sleeping = false;
    this.doorbell?.close();
    this.doorbell = null;
    this.drainLogs();
    this.drainRefusals();
    const end: PollerEnd = this.failed
      ? { kind: 'failed', error: this.failed }
      : this.sealedBy
        ? { kind: 'sealed', error: this.sealedBy }
        : { kind: 'stopped' };
    for (const listener of [...this.endListeners]) listener(end);
    this.endListeners.clear();
  }

  /** `stop()`, for `using poller = new EventPoller(...)`. */
  [Symbol.dispose](): void {
    this.stop();
  }

  /** `stop()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.stop();
  }

  isActive(): boolean {
    return this.active;
  }

  /** Counters for observability and tests. */
  stats(): PollerStats {
    return { ...this.statsCounters };
  }

  /** Ticks so far (the seed's poll count). */
  get ticks(): number {
    return this.pollCount;
  }

  /**
   * The events as an async iterable: `for await (const event of poller.events({ signal }))`. The loop is the
   * poller's consumer: its first `next()` starts the poller (if needed) and replaces any `onStepEvent`
   * callback. Ending the loop (`break`, `return`, a throw in its body) or aborting the signal stops the
   * poller, and the events it read but the loop did not get are given back to their source without using an
   * attempt (GIVE_BACK; with a worker core that cannot take give-backs, completed as retryable failures), so
   * none waits for its completion timeout. An abort throws `signal.reason` (an `AbortError`) into the loop; a
   * fatal poller error is thrown into it too, at once, even while it waits. When the poller stops otherwise
   * (`stop()`, or the worker core sealed the ring at its stop) the loop gets what was read, then ends.
   */
  events(options: { signal?: AbortSignal } = {}): AsyncIterable<FfiStepEvent> {
    const source: IteratorSource = {
      start: () => this.start(),
      stop: () => this.stop(),
      setSink: (sink) => {
        this.onEventCallback = sink;
      },
      clearSink: (sink) => {
        if (this.onEventCallback === sink) this.onEventCallback = null;
      },
      onEnd: (listener) => {
        this.endListeners.add(listener);
        return () => this.endListeners.delete(listener);
      },
      giveBack: (events) => this.giveBackUnrun(events),
    };
    return eventIterable(source, options.signal);
  }

  /**
   * Events read for a loop that will not run them: given back (GIVE_BACK) when the worker core takes
   * give-backs, else completed as retryable failures, then flushed. Failures are reported, never thrown.
   */
  private giveBackUnrun(events: readonly FfiStepEvent[]): void {
    const ring = this.ring;
    if (ring === null) {
      this.report(new UnsupportedByWorkerError('give_back', `a seed-style adapter cannot give back; ${events.length} read events wait for their timeout`));
      return;
    }
    try {
      if (ring.supports('give_back')) {
        ring.giveBackStepEvents(events.map((event) => event.event_id));
      } else {
        for (const event of events) ring.completeStepEvent(event.event_id, notRunFailure(event));
      }
      ring.flushCompletions();
    } catch (error) {
      this.report(error as Error);
    }
  }

  private ringAdapter(feature: 'give_back' | 'checkpoint'): RingAwareAdapter {
    if (this.ring === null) throw new UnsupportedByWorkerError(feature, 'the poller runs on a seed-style adapter (the eleven methods only)');
    return this.ring;
  }

  /** The regular tick: a poll, then maintenance on the seed's cadence. */
  private tick(): void {
    if (!this.active) return;
    this.pollCount += 1;
    this.statsCounters.ticks += 1;
    // Asleep on the doorbell with nothing to read or write: the flag stays armed (a poll would clear it and
    // set it again) and the tick only maintains. An idle worker's tick costs this check, not a poll
    // (issue 21: idle CPU).
    const ring = this.ring;
    if (this.sleeping && ring !== null && !ring.hasPendingEvents() && ring.completionsQueued() === 0) {
      this.statsCounters.quietTicks += 1;
      this.maintain();
      return;
    }
    if (this.sleeping) {
      this.sleeping = false;
      this.ring?.wake();
    }
    this.poll();
    this.maintain();
  }

  private poll(): void {
    if (!this.active || this.polling || this.failed) return;
    this.polling = true;
    let delivered = 0;
    try {
      const ring = this.ring;
      if (ring) ring.flushCompletions();
      let room = ring ? this.maxInFlight - ring.inFlightCount() : Number.POSITIVE_INFINITY;
      this.backpressured = false;
      let limited = false;
      while (room > 0 && this.active) {
        if (delivered >= this.maxEventsPerPoll) {
          limited = true;
          break;
        }
        let event: FfiStepEvent | null;
        try {
          event = this.ffiAdapter.pollStepEvents();
        } catch (error) {
          if (error instanceof EventDecodeError) {
            this.report(error);
            continue; // that message is consumed; the ring is fine
          }
          throw error;
        }
        if (event === null) break;
        delivered += 1;
        room -= 1;
        this.deliver(event);
        if (!ring) break; // the seed's contract on a plain adapter: one event per poll
      }
      if (room <= 0 && ring?.transport === 'ring' && ring.inFlightCount() < this.maxInFlight) {
        // The poll read as many as there was room for at its start, and handlers that completed meanwhile
        // (synchronous ones) freed room again: read on after yielding to the event loop once (timers, I/O,
        // promise reactions), not at the next tick. Waiting for the tick capped a worker of synchronous
        // handlers at maxInFlight steps per 10 ms (200 per tick: the main job's 19.9k steps/s; issue 21).
        this.scheduleExtra();
      } else if (room <= 0) {
        this.backpressured = true;
        this.statsCounters.backpressured += 1;
      } else if (limited) {
        // Stopped at maxEventsPerPoll with events likely waiting: the ring reads on between ticks (the
        // extra poll's own check continues from there); the ffi transport waits for the next tick.
        if (ring?.transport === 'ring') this.scheduleExtra();
      } else if (ring && this.doorbell?.connected && this.active) {
        // Idle: ask for a doorbell. If events slipped in meanwhile, read them now.
        if (ring.prepareSleep()) {
          this.sleeping = true;
          this.statsCounters.sleeps += 1;
        } else {
          this.scheduleExtra();
        }
      }
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.polling = false;
    }
    if (delivered > 0) {
      this.delivered += delivered;
      this.statsCounters.events += delivered;
      this.onCycleCallback?.(delivered);
    }
  }

  private deliver(event: FfiStepEvent): void {
    if (!this.onEventCallback) return;
    try {
      this.onEventCallback(event);
    } catch (error) {
      this.report(error as Error);
    }
  }

  private maintain(): void {
    const n = this.pollCount;
    try {
      if (n % this.ringMaintenanceInterval === 0) {
        this.ring?.maintainRing();
        this.ring?.checkWorker();
      }
      if (n % this.starvationCheckInterval === 0) this.ffiAdapter.checkStarvationWarnings();
      if (n % this.cleanupInterval === 0) this.ffiAdapter.cleanupTimeouts();
      if (n % this.metricsInterval === 0) {
        if ((this.onMetricsCallback || this.onStarvationCallback) && (this.metricsWanted?.() ?? true)) {
          const metrics = this.ffiAdapter.getFfiDispatchMetrics();
          this.onMetricsCallback?.(metrics);
          if (metrics.starvation_detected) this.onStarvationCallback?.(metrics);
          if (metrics.worker_error) throw new WorkerFaultError(metrics.worker_error.phase, metrics.worker_error.reason);
        }
        this.drainLogs();
        this.drainRefusals();
      }
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private drainRefusals(): void {
    if (!this.ring || !this.onRefusalCallback) return;
    try {
      const batch = this.ring.pollCompletionRefusals();
      this.statsCounters.refusals += batch.refusals.length;
      this.statsCounters.refusalsDropped += batch.dropped;
      for (const refusal of batch.refusals) this.onRefusalCallback(refusal);
    } catch (error) {
      this.report(error as Error);
    }
  }

  private drainLogs(): void {
    if (!this.ring || !this.onLogCallback) return;
    try {
      for (const record of this.ring.pollWorkerLogs()) this.onLogCallback(record);
    } catch (error) {
      this.report(error as Error);
    }
  }

  private onDoorbell(): void {
    if (this.wakeTrace !== null) this.wakeTrace.doorbell();
    this.statsCounters.doorbellWakes += 1;
    this.sleeping = false;
    this.ring?.wake();
    // Poll here, in the socket's callback, not through `soon()`: on a thread that was idle the extra hop
    // through setImmediate added about 0.1 ms to the wake-up (bench/end-to-end.ts, idle wake).
    this.extraPoll();
  }

  private onCompletion(): void {
    if (this.backpressured) this.scheduleExtra();
  }

  private scheduleExtra(): void {
    if (this.extraScheduled || !this.active) return;
    this.extraScheduled = true;
    this.timers.soon(() => {
      this.extraScheduled = false;
      this.extraPoll();
    });
  }

  /** A poll between ticks (doorbell, freed capacity, more data). */
  private extraPoll(): void {
    if (!this.active) return;
    this.statsCounters.extraPolls += 1;
    this.poll();
    // More ready than one poll took (and room for it): keep going between ticks.
    if (!this.backpressured && !this.sleeping && this.ring?.hasPendingEvents() && this.ring.transport === 'ring') this.scheduleExtra();
  }

  /**
   * A ring that cannot be read (corrupt, closed, dead peer) or a worker core that stopped on its own stops
   * the poller, then is reported once: listeners see a stopped poller and `failure` set.
   */
  private fail(error: Error): void {
    if (error instanceof RingSealedError) {
      // A worker core that stopped on its own seals its events ring too, after recording its fault: that is
      // fatal (WorkerFaultError), not the quiet end of a stop asked for elsewhere.
      const fault = this.faultBehindSeal();
      if (fault === null) {
        this.endSealed(error);
        return;
      }
      error = fault;
    }
    if (isFatalError(error)) {
      if (this.failed) return;
      this.failed = error;
      this.stop();
      this.report(error);
      return;
    }
    this.report(error);
  }

  /** The worker core's recorded fault once it sealed the ring (`status.error`), or null (a stop asked for). */
  private faultBehindSeal(): WorkerFaultError | null {
    try {
      const fault = this.ffiAdapter.getWorkerStatus().error;
      return fault ? new WorkerFaultError(fault.phase, fault.reason) : null;
    } catch {
      return null; // no answer (the adapter closed meanwhile): the seal alone says the worker core stops
    }
  }

  /** The worker core sealed the events ring: stop quietly (no report), then tell `onSealed`. */
  private endSealed(sealed: RingSealedError): void {
    if (this.sealedBy !== null || this.failed !== null) return;
    this.sealedBy = sealed;
    this.stop();
    try {
      this.onSealedCallback?.(sealed);
    } catch (error) {
      this.report(error as Error);
    }
  }

  private report(error: Error): void {
    this.statsCounters.errors += 1;
    if (this.onErrorCallback) this.onErrorCallback(error);
    else if (error instanceof DoorbellError) console.warn(`EventPoller: ${error.message}`);
    else console.error('EventPoller error:', error);
  }
}

/** A retryable failure for an event read and never run, for a worker core that cannot take give-backs. */
function notRunFailure(event: FfiStepEvent): string {
  return JSON.stringify({
    step_uuid: event.step_uuid,
    success: false,
    result: null,
    status: 'error',
    metadata: {},
    error: {
      message: 'read for an events() loop that ended before running it; the worker core cannot take give-backs (layout 1.0)',
      error_type: 'not_run',
      retryable: true,
    },
  });
}
