/**
 * `pollInProcessEvents` over the library's `poll_domain_events`: the worker core's domain events
 * (`step.completed`, `step.retry_requested`, `step.failed`, `task.completed`, recorded once the step store has
 * persisted each result) handed out one per call from a queue here, without an FFI call per poll.
 *
 * The queue is refilled only when it is empty, with one FFI call at most every 100 ms (their
 * `InProcessDomainEventPoller` polls every 10 ms, up to 100 events per cycle): the events of a busy worker
 * wait in the library's bounded log (4096 events; when full the oldest are dropped, counted, and logged as a
 * warning by the library) and the queue here holds at most one drain. The library records nothing until the
 * first drain, made by the first `poll()`: events from then on are delivered, as from their broadcast channel
 * subscribed at that moment. Against a library without `poll_domain_events`, `poll()` returns null.
 */
import type { DomainEventBatch } from '../protocol.ts';
import type { NapiDomainEvent } from './types.ts';

/** Least time between two drains of the library's log. */
export const DRAIN_INTERVAL_MS = 100;

export class DomainEventFeed {
  readonly #drain: () => DomainEventBatch | null;
  readonly #now: () => number;
  #queue: NapiDomainEvent[] = [];
  #next = 0;
  #drainedAt = Number.NEGATIVE_INFINITY;

  /** `drain`: one read of the library's log (the adapter's `pollDomainEvents`); `now`: the clock, in ms. */
  constructor(drain: () => DomainEventBatch | null, now: () => number = Date.now) {
    this.#drain = drain;
    this.#now = now;
  }

  /** The next event, oldest first, or null when none is queued and the library's log was read less than 100 ms ago or is empty. */
  poll(): NapiDomainEvent | null {
    if (this.#next === this.#queue.length) {
      const now = this.#now();
      if (now - this.#drainedAt < DRAIN_INTERVAL_MS) return null;
      this.#drainedAt = now;
      const batch = this.#drain();
      if (batch === null || batch.events.length === 0) return null;
      // The library writes tasker-core's shape: optional fields are omitted, never null.
      this.#queue = batch.events;
      this.#next = 0;
    }
    const event = this.#queue[this.#next] as NapiDomainEvent;
    this.#next += 1;
    return event;
  }
}
