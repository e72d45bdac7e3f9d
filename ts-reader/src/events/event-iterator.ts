/**
 * `EventPoller.events()`: the poller's step events as an async iterable, for
 * `for await (const event of poller.events({ signal }))` (issue 17 item 3).
 *
 * Invariants:
 * - Once the loop ends (a `break`, a `return`, a throw in its body, an abort), no event is read into its
 *   queue any more: the iterator detaches its sink and stops the poller before anything else.
 * - Every event the poller read for the loop is either yielded to it or handed to `giveBack` (the poller
 *   gives it back to the worker core, which returns it to its source without using an attempt): none is
 *   stranded until its completion timeout.
 * - An abort rejects the pending or next `next()` with `signal.reason` (an `AbortError` by default); a fatal
 *   poller error rejects it with that error. Both reach a waiting loop at once, on every runtime: the poller
 *   calls the iterator when it ends, and nothing here waits on a timer.
 * - When the poller stops on its own (`stop()`, or the worker core sealed the events ring), the loop still
 *   gets the events read before the stop, then ends normally.
 */
import type { FfiError, RingSealedError } from '../errors.ts';
import type { FfiStepEvent } from '../protocol.ts';

/** Why a poller stopped. */
export type PollerEnd =
  | { readonly kind: 'stopped' }
  | { readonly kind: 'sealed'; readonly error: RingSealedError }
  | { readonly kind: 'failed'; readonly error: FfiError };

/** What the iterator needs from its poller. */
export interface IteratorSource {
  /** Starts the poller (a no-op when it runs). */
  start(): void;
  stop(): void;
  /** Routes every event the poller reads to `sink` (replacing any `onStepEvent` callback). */
  setSink(sink: (event: FfiStepEvent) => void): void;
  /** Detaches `sink` if it is still the poller's (a later `events()` loop may have replaced it). */
  clearSink(sink: (event: FfiStepEvent) => void): void;
  /** Calls `listener` once when the poller stops; returns the unsubscribe function. */
  onEnd(listener: (end: PollerEnd) => void): () => void;
  /** Gives back events that were read and will not be yielded (errors are the poller's to report). */
  giveBack(events: readonly FfiStepEvent[]): void;
}

interface Waiter {
  resolve(result: IteratorResult<FfiStepEvent>): void;
  reject(error: unknown): void;
}

const DONE: IteratorResult<FfiStepEvent> = { value: undefined, done: true };

class EventIterator implements AsyncIterator<FfiStepEvent> {
  private readonly queue: FfiStepEvent[] = [];
  private head = 0;
  private waiter: Waiter | null = null;
  private ended: PollerEnd | null = null;
  /** The loop is over: nothing more is read for it or yielded. */
  private closed = false;
  /** An abort or a fatal error not yet thrown into the loop (thrown once, then `done`). */
  private pendingThrow: { error: unknown } | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly sink = (event: FfiStepEvent) => this.push(event);
  private readonly onAbort = () => this.abort();

  private readonly source: IteratorSource;
  private readonly signal: AbortSignal | undefined;

  constructor(source: IteratorSource, signal: AbortSignal | undefined) {
    this.source = source;
    this.signal = signal;
    if (signal?.aborted) {
      this.closed = true;
      this.pendingThrow = { error: signal.reason };
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    source.setSink(this.sink);
    this.unsubscribe = source.onEnd((end) => this.end(end));
    source.start();
  }

  next(): Promise<IteratorResult<FfiStepEvent>> {
    if (this.pendingThrow !== null) {
      const { error } = this.pendingThrow;
      this.pendingThrow = null;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve(DONE);
    if (this.head < this.queue.length) return Promise.resolve({ value: this.shift(), done: false });
    if (this.ended !== null) {
      this.close();
      return Promise.resolve(DONE);
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The loop ended early (`break`, `return`, a throw in its body): stop reading, give back the rest. */
  return(): Promise<IteratorResult<FfiStepEvent>> {
    this.pendingThrow = null;
    this.close();
    return Promise.resolve(DONE);
  }

  private push(event: FfiStepEvent): void {
    if (this.closed) {
      this.source.giveBack([event]); // cannot happen once detached; never strand one if it does
      return;
    }
    const waiter = this.waiter;
    if (waiter !== null && this.head === this.queue.length) {
      this.waiter = null;
      waiter.resolve({ value: event, done: false });
      return;
    }
    this.queue.push(event);
  }

  private shift(): FfiStepEvent {
    const event = this.queue[this.head] as FfiStepEvent;
    this.head += 1;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return event;
  }

  private end(end: PollerEnd): void {
    this.ended = end;
    if (end.kind === 'failed') {
      this.close(true);
      this.throwIntoLoop(end.error);
      return;
    }
    // Stopped or sealed: the queued events are still yielded; a waiting loop (queue empty) ends now.
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      this.close();
      waiter.resolve(DONE);
    }
  }

  private abort(): void {
    if (this.closed) return;
    this.close(true);
    this.throwIntoLoop(this.signal?.reason);
  }

  /** Rejects the waiting `next()`, or keeps the error for the next one. */
  private throwIntoLoop(error: unknown): void {
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter.reject(error);
    } else {
      this.pendingThrow = { error };
    }
  }

  /**
   * Detach, stop the poller, give back what was read and not yielded; a waiting `next()` ends (`done`) unless
   * `keepWaiter` (the caller rejects it next). Idempotent.
   */
  private close(keepWaiter = false): void {
    if (this.closed) return;
    this.closed = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.source.clearSink(this.sink);
    if (this.ended === null) this.source.stop();
    const unrun = this.queue.slice(this.head);
    this.queue.length = 0;
    this.head = 0;
    if (unrun.length > 0) this.source.giveBack(unrun);
    const waiter = this.waiter;
    if (waiter !== null && !keepWaiter) {
      this.waiter = null;
      waiter.resolve(DONE);
    }
  }
}

/** The async iterable of `EventPoller.events()`: one iterator, created (and the poller started) on first use. */
export function eventIterable(source: IteratorSource, signal: AbortSignal | undefined): AsyncIterable<FfiStepEvent> {
  let iterator: EventIterator | null = null;
  return {
    [Symbol.asyncIterator]: () => {
      iterator ??= new EventIterator(source, signal);
      return iterator;
    },
  };
}
