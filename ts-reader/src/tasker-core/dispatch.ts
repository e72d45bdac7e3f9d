/**
 * Step dispatch in tasker-core's terms over this package's adapter: events come off the ring (no FFI call per
 * poll), are handed out one per `poll()` in camelCase, and are answered through the adapter's in-flight set
 * and its completion / checkpoint writers, so every answer is given at once.
 *
 * Their poller calls `pollStepEvents` up to 100 times per 10 ms tick and drives no ring maintenance of its
 * own; this class does what this package's `EventPoller` does between reads: it writes completions that
 * waited for room, and about every 100 ms (timed on idle polls and every 256th poll) it heartbeats, checks
 * the producer's liveness and the region, and checks the worker core for a fault. A ring sealed by the worker
 * core (its stop or graceful shutdown) ends dispatch quietly: every later poll returns null.
 *
 * Each `poll()` reads at most one frame: the reader keeps the producer position it last loaded, so a burst
 * already published is read frame by frame without another acquire load, and nothing is read ahead of the
 * caller (an event's completion clock starts when it is handed out, and nothing read is ever left unheld).
 */
import { EventDecodeError, RingSealedError } from '../errors.ts';
import type { NativeFfiAdapter } from '../ffi/native-adapter.ts';
import type { FfiStepEvent } from '../protocol.ts';
import { isCanonicalEventId } from '../ring/writer.ts';
import { toNapiStepEvent } from './event-mapping.ts';
import { completionJson, requireUuid, stepCheckpoint } from './result-mapping.ts';
import type { NapiCheckpointYieldData, NapiDispatchMetrics, NapiStepEvent, NapiStepExecutionResult } from './types.ts';

/** Ring maintenance at most this often (the poller's `ringMaintenanceInterval` of 10 ticks). */
const MAINTENANCE_INTERVAL_MS = 100;

export class StepDispatch {
  readonly #adapter: NativeFfiAdapter;
  #sealed = false;
  #polls = 0;
  #maintainedAt = 0;

  constructor(adapter: NativeFfiAdapter) {
    this.#adapter = adapter;
  }

  /**
   * The next step event, or null when none is ready (or the worker core sealed the ring). Throws the
   * adapter's fatal errors (a corrupt ring, a dead producer, a worker core fault), and `EventDecodeError`
   * for an event that is not a step event's JSON (that step is failed at once, not retried).
   */
  poll(): NapiStepEvent | null {
    if (this.#sealed) return null;
    const adapter = this.#adapter;
    let event: FfiStepEvent | null;
    try {
      adapter.flushCompletions();
      if ((++this.#polls & 255) === 0) this.#maintain();
      event = adapter.pollStepEvents();
      if (event === null) {
        this.#maintain();
        return null;
      }
    } catch (error) {
      if (!(error instanceof RingSealedError)) throw error;
      this.#sealed = true;
      return null;
    }
    try {
      return toNapiStepEvent(event);
    } catch (error) {
      throw this.#failMalformed(event, error);
    }
  }

  /**
   * The step's result: true when written, false at once when the event is not in flight here (never handed
   * out, already answered, or out longer than the completion timeout). Throws `FfiCallError('INVALID_ARGUMENT')`
   * for an event id or `stepUuid` that is not a UUID.
   */
  complete(eventId: string, result: NapiStepExecutionResult): boolean {
    requireUuid(eventId, 'event ID');
    requireUuid(result?.stepUuid, 'step UUID');
    // A UUID in another form than the canonical one was never handed out here.
    if (!isCanonicalEventId(eventId)) return false;
    return this.#adapter.completeStepEvent(eventId, completionJson(result));
  }

  /**
   * The step yields (a CHECKPOINT record): the store keeps the cursor, items processed and accumulated
   * results, the attempt is not counted, and the step comes back with `workflowStep.checkpoint` set. True
   * when written; false as for `complete`; the same argument checks.
   */
  checkpoint(eventId: string, data: NapiCheckpointYieldData): boolean {
    requireUuid(eventId, 'event ID');
    requireUuid(data?.stepUuid, 'step UUID');
    if (!isCanonicalEventId(eventId)) return false;
    return this.#adapter.checkpointYieldStepEvent(eventId, stepCheckpoint(data));
  }

  /**
   * tasker-core's metrics: `pendingCount` and the ages and id from the adapter's in-flight set (events
   * handed out and not answered; ages from its coarse delivery clock), starvation as the worker core
   * judges it (in flight longer than `starvation_threshold_ms`).
   */
  metrics(): NapiDispatchMetrics {
    const adapter = this.#adapter;
    const core = adapter.getFfiDispatchMetrics();
    const metrics: NapiDispatchMetrics = {
      pendingCount: adapter.inFlightCount(),
      starvationDetected: core.starvation_detected,
      starvingEventCount: core.starving_event_count,
    };
    const range = adapter.inFlightRange();
    if (range !== null) {
      const now = Date.now();
      metrics.oldestPendingAgeMs = Math.max(0, now - range.oldestReadAt);
      metrics.newestPendingAgeMs = Math.max(0, now - range.newestReadAt);
      metrics.oldestEventId = range.oldestId;
    }
    return metrics;
  }

  #maintain(): void {
    const now = Date.now();
    if (now - this.#maintainedAt < MAINTENANCE_INTERVAL_MS) return;
    this.#maintainedAt = now;
    this.#adapter.maintainRing();
    this.#adapter.checkWorker();
  }

  /** Fails the step of an event that cannot be shaped (not retryable: it would come back the same) and says why. */
  #failMalformed(event: FfiStepEvent, cause: unknown): EventDecodeError {
    const why = `step event ${event.event_id} lacks a field tasker-core's NapiStepEvent needs: ${(cause as Error).message}`;
    const failure = JSON.stringify({
      step_uuid: event.step_uuid,
      success: false,
      result: null,
      status: 'error',
      metadata: { execution_time_ms: 0, retryable: false },
      error: { message: why, error_type: 'invalid_event', retryable: false },
    });
    try {
      this.#adapter.completeStepEvent(event.event_id, failure);
    } catch {
      // Not answerable (a malformed id): the worker core times it out.
    }
    return new EventDecodeError(why, JSON.stringify(event).slice(0, 120), cause);
  }
}
