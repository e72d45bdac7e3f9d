/** EventPoller cadence and draining, with counted ticks (no wall-clock timing). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventPoller } from '../src/events/event-poller.ts';
import type { FfiAdapter } from '../src/ffi/adapter.ts';
import { EventDecodeError, OptionsError, RingPeerError, RingReadError, WorkerFaultError } from '../src/ffi/errors.ts';
import type { RingAwareAdapter } from '../src/ffi/native-adapter.ts';
import type { CompletionRefusal, FfiDispatchMetrics, FfiStepEvent, WorkerLogRecord } from '../src/ffi/types.ts';

function event(i: number): FfiStepEvent {
  return { event_id: `id-${i}`, task_uuid: 't', step_uuid: `s-${i}`, task_sequence_step: {} as never };
}

const metrics: FfiDispatchMetrics = {
  pending_count: 0,
  in_flight_count: 0,
  completed_count: 0,
  failed_count: 0,
  starvation_detected: false,
  starving_event_count: 0,
};

/** The seed's interface only: the poller must treat it as the seed did (one event per poll). */
class SeedAdapter implements FfiAdapter {
  queue: FfiStepEvent[] = [];
  calls = { poll: 0, starvation: 0, cleanup: 0, metrics: 0, complete: 0 };
  pollStepEvents() {
    this.calls.poll += 1;
    return this.queue.shift() ?? null;
  }
  completeStepEvent(): void {
    this.calls.complete += 1;
  }
  bootstrapWorker() {
    return { status: 'started' as const, handle_id: 'h', worker_id: 'w' };
  }
  getWorkerStatus() {
    return { running: true };
  }
  stopWorker() {
    return 'stopped';
  }
  transitionToGracefulShutdown() {
    return 'draining';
  }
  isWorkerRunning() {
    return true;
  }
  getFfiDispatchMetrics() {
    this.calls.metrics += 1;
    return metrics;
  }
  checkStarvationWarnings() {
    this.calls.starvation += 1;
  }
  cleanupTimeouts() {
    this.calls.cleanup += 1;
  }
  close() {}
}

/** Adds what this package's adapters provide: in-flight counting, completion hook, logs. */
class RingishAdapter extends SeedAdapter implements RingAwareAdapter {
  readonly runtime = 'node' as const;
  transport: 'ring' | 'ffi' = 'ring';
  readonly doorbellPath = null;
  onCompletion: (() => void) | null = null;
  inFlight = 0;
  logs: WorkerLogRecord[] = [];
  throwOnce: Error | null = null;
  override pollStepEvents() {
    if (this.throwOnce) {
      const e = this.throwOnce;
      this.throwOnce = null;
      throw e;
    }
    const e = super.pollStepEvents();
    if (e) this.inFlight += 1;
    return e;
  }
  override completeStepEvent(): boolean {
    super.completeStepEvent();
    this.inFlight -= 1;
    this.onCompletion?.();
    return true;
  }
  inFlightCount() {
    return this.inFlight;
  }
  hasPendingEvents() {
    return this.queue.length > 0;
  }
  prepareSleep() {
    return false;
  }
  wake() {}
  flushCompletions() {
    return 0;
  }
  maintained = 0;
  maintainError: Error | null = null;
  maintainRing() {
    this.maintained += 1;
    if (this.maintainError) throw this.maintainError;
  }
  pollWorkerLogs() {
    const l = this.logs;
    this.logs = [];
    return l;
  }
  /** The worker core's fault, once it has one (checkWorker throws it). */
  fault: WorkerFaultError | null = null;
  workerChecks = 0;
  checkWorker() {
    this.workerChecks += 1;
    if (this.fault) throw this.fault;
  }
  refusals: CompletionRefusal[] = [];
  pollCompletionRefusals() {
    const refusals = this.refusals;
    this.refusals = [];
    return { refusals, dropped: 0 };
  }
}

function manualTimers() {
  const state = { tick: null as null | (() => void), interval: 0, soon: [] as Array<() => void>, cleared: false };
  return {
    state,
    timers: {
      setInterval: (fn: () => void, ms: number) => {
        state.tick = fn;
        state.interval = ms;
        return 1;
      },
      clearInterval: () => {
        state.cleared = true;
      },
      soon: (fn: () => void) => state.soon.push(fn),
    },
    runSoon() {
      while (state.soon.length > 0) state.soon.shift()?.();
    },
  };
}

describe('EventPoller cadence (counted ticks)', () => {
  it("uses the seed's defaults: a 10 ms tick, starvation every 100 ticks, cleanup every 1000, metrics every 100", () => {
    const adapter = new SeedAdapter();
    const t = manualTimers();
    const poller = new EventPoller(adapter, undefined, undefined, undefined, { timers: t.timers });
    const seen: FfiDispatchMetrics[] = [];
    poller.onMetrics((m) => seen.push(m));
    poller.start();
    assert.equal(t.state.interval, 10);
    for (let i = 0; i < 2500; i++) t.state.tick?.();
    assert.equal(poller.ticks, 2500);
    assert.equal(adapter.calls.starvation, 25);
    assert.equal(adapter.calls.cleanup, 2);
    assert.equal(adapter.calls.metrics, 25);
    assert.equal(seen.length, 25);
    poller.stop();
    assert.equal(t.state.cleared, true);
    assert.equal(poller.isActive(), false);
  });

  it("delivers one event per poll on a plain seed adapter (the seed's contract)", () => {
    const adapter = new SeedAdapter();
    adapter.queue = [event(1), event(2), event(3)];
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const got: string[] = [];
    poller.onStepEvent((e) => got.push(e.event_id));
    poller.start();
    t.runSoon(); // the first poll right after start
    assert.deepEqual(got, ['id-1']);
    t.state.tick?.();
    t.state.tick?.();
    assert.deepEqual(got, ['id-1', 'id-2', 'id-3']);
    poller.stop();
  });

  it('drains every ready event in one poll, up to maxInFlight, and refills when completions free room', () => {
    const adapter = new RingishAdapter();
    adapter.queue = Array.from({ length: 50 }, (_, i) => event(i));
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, maxInFlight: 20 });
    const got: FfiStepEvent[] = [];
    poller.onStepEvent((e) => got.push(e));
    poller.start();
    t.runSoon();
    assert.equal(got.length, 20, 'backpressure before the read: 20 in flight, 30 left in the ring');
    assert.equal(adapter.queue.length, 30);
    for (const _ of got.splice(0, 5)) adapter.completeStepEvent();
    t.runSoon();
    assert.equal(adapter.inFlight, 20, 'five completions let five more in, at once (no tick needed)');
    assert.equal(adapter.queue.length, 25);
    assert.equal(poller.stats().ticks, 0);
    poller.stop();
  });

  it('a bad event is reported and skipped; later events still arrive; logs reach the hook', () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1)];
    adapter.throwOnce = new EventDecodeError('not JSON', '{oops');
    adapter.logs = [{ ts_unix_ms: 1, level: 'warn', target: 't', message: 'hello', fields: {} }];
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, metricsInterval: 1 });
    const errors: Error[] = [];
    const got: string[] = [];
    const logs: WorkerLogRecord[] = [];
    poller.onError((e) => errors.push(e));
    poller.onStepEvent((e) => got.push(e.event_id));
    poller.onLog((r) => logs.push(r));
    poller.start();
    t.state.tick?.();
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof EventDecodeError);
    assert.deepEqual(got, ['id-1']);
    assert.equal(logs[0]?.message, 'hello');
    assert.equal(poller.isActive(), true);
    poller.stop();
  });

  it('an error thrown by the onStepEvent callback goes to onError and polling goes on', () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1), event(2)];
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const errors: Error[] = [];
    let n = 0;
    poller.onError((e) => errors.push(e));
    poller.onStepEvent(() => {
      n += 1;
      if (n === 1) throw new Error('handler bug');
    });
    poller.start();
    t.runSoon();
    assert.equal(n, 2);
    assert.equal(errors[0]?.message, 'handler bug');
    poller.stop();
  });

  it('maxEventsPerPoll: on ffi the rest waits for the next tick (seed 1, tasker-core 100); default drains to maxInFlight', () => {
    const run = (maxEventsPerPoll: number | undefined) => {
      const adapter = new RingishAdapter();
      adapter.transport = 'ffi';
      adapter.queue = Array.from({ length: 250 }, (_, i) => event(i));
      const t = manualTimers();
      const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, maxInFlight: 1000, maxEventsPerPoll });
      const perPoll: number[] = [];
      poller.onCycle((n) => perPoll.push(n));
      poller.start();
      t.runSoon(); // the first poll right after start
      t.state.tick?.();
      t.runSoon();
      t.state.tick?.();
      t.runSoon();
      poller.stop();
      return { perPoll, left: adapter.queue.length, ticks: poller.stats().ticks };
    };
    assert.deepEqual(run(1), { perPoll: [1, 1, 1], left: 247, ticks: 2 }, 'the seed: one event per poll, nothing between ticks');
    assert.deepEqual(run(100), { perPoll: [100, 100, 50], left: 0, ticks: 2 }, "tasker-core's 100 per poll");
    assert.deepEqual(run(undefined), { perPoll: [250], left: 0, ticks: 2 }, 'unlimited: everything ready, up to maxInFlight');
  });

  it('maxEventsPerPoll on the ring: a poll stopped at the limit schedules the next at once (no tick needed)', () => {
    const adapter = new RingishAdapter();
    adapter.queue = Array.from({ length: 35 }, (_, i) => event(i));
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, maxEventsPerPoll: 10 });
    const perPoll: number[] = [];
    poller.onCycle((n) => perPoll.push(n));
    poller.start();
    t.runSoon();
    assert.deepEqual(perPoll, [10, 10, 10, 5]);
    assert.equal(poller.stats().ticks, 0);
    assert.equal(poller.stats().backpressured, 0, 'the per-poll limit is not backpressure');
    poller.stop();
  });

  it('refuses nonsense intervals', () => {
    assert.throws(() => new EventPoller(new SeedAdapter(), 0), RangeError);
    assert.throws(() => new EventPoller(new SeedAdapter(), 10, -1), RangeError);
    assert.throws(() => new EventPoller(new SeedAdapter(), 10, 100, 1000, { maxInFlight: 0 }), RangeError);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new EventPoller(new SeedAdapter(), 10, 100, 1000, { maxEventsPerPoll: bad }), RangeError, `maxEventsPerPoll ${bad}`);
    }
    assert.doesNotThrow(() => new EventPoller(new SeedAdapter(), 10, 100, 1000, { maxEventsPerPoll: Number.POSITIVE_INFINITY }));
  });

  it('maintains the ring every 10 ticks (about 100 ms) and stops with the typed error when its producer is dead', () => {
    const adapter = new RingishAdapter();
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const errors: Error[] = [];
    poller.onError((e) => errors.push(e));
    poller.start();
    for (let i = 0; i < 250; i++) t.state.tick?.();
    assert.equal(adapter.maintained, 25, 'ring maintenance on its own cadence, not the starvation check');
    assert.equal(adapter.calls.starvation, 2);
    adapter.maintainError = new RingPeerError('PEER_DEAD', "the events ring's producer (pid 42) is dead");
    for (let i = 0; i < 10; i++) t.state.tick?.();
    assert.equal(adapter.maintained, 26);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof RingPeerError);
    assert.equal((errors[0] as RingPeerError).code, 'PEER_DEAD');
    assert.equal(poller.isActive(), false, 'a dead producer stops the poller');
    for (const bad of [0, 2.5]) {
      assert.throws(() => new EventPoller(adapter, 10, 100, 1000, { ringMaintenanceInterval: bad }), RangeError, `ringMaintenanceInterval ${bad}`);
    }
  });

  it('a fatal error stops the poller before it is reported: the callback sees it stopped, once', () => {
    const adapter = new RingishAdapter();
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const seen: Array<{ error: Error; active: boolean; failure: Error | null }> = [];
    poller.onError((error) => seen.push({ error, active: poller.isActive(), failure: poller.failure }));
    poller.start();
    adapter.throwOnce = new RingReadError('MISALIGNED', 12, 'consumer 0 or producer 12 is not a multiple of 8');
    t.runSoon();
    assert.equal(seen.length, 1);
    assert.ok(seen[0]?.error instanceof RingReadError);
    assert.equal(seen[0]?.active, false, 'stopped before the report');
    assert.equal(seen[0]?.failure, seen[0]?.error);
    assert.equal(t.state.cleared, true);
  });

  it('a worker core that stopped on its own is a fatal WorkerFaultError, found on a maintenance tick', () => {
    const adapter = new RingishAdapter();
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const errors: Error[] = [];
    poller.onError((e) => errors.push(e));
    poller.start();
    for (let i = 0; i < 10; i++) t.state.tick?.();
    assert.equal(adapter.workerChecks, 1, 'checked with the ring maintenance (every 10 ticks)');
    adapter.fault = new WorkerFaultError('running', 'the completions ring is corrupt');
    for (let i = 0; i < 10; i++) t.state.tick?.();
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof WorkerFaultError && errors[0].code === 'WORKER_FAULT' && errors[0].reason === 'the completions ring is corrupt');
    assert.equal(poller.isActive(), false);
    assert.equal(poller.failure, errors[0]);
  });

  it('metrics that carry worker_error stop the poller with a WorkerFaultError', () => {
    const adapter = new RingishAdapter();
    adapter.getFfiDispatchMetrics = () => ({ ...metrics, worker_error: { phase: 'running', reason: 'the pump panicked' } });
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, metricsInterval: 1 });
    const errors: Error[] = [];
    poller.onError((e) => errors.push(e));
    poller.onMetrics(() => {});
    poller.start();
    t.state.tick?.();
    assert.ok(errors[0] instanceof WorkerFaultError && errors[0].reason === 'the pump panicked', String(errors[0]));
    assert.equal(poller.isActive(), false);
  });

  it('refusals read with the metrics reach onRefusal, and stop() reads the last ones', () => {
    const adapter = new RingishAdapter();
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, metricsInterval: 5 });
    const got: CompletionRefusal[] = [];
    poller.onRefusal((r) => got.push(r));
    poller.start();
    const refusal = (id: string): CompletionRefusal => ({ event_id: id, kind: 'claim_lost', message: 'moved on', at_unix_ms: 1 });
    adapter.refusals = [refusal('a'), refusal('b')];
    for (let i = 0; i < 4; i++) t.state.tick?.();
    assert.equal(got.length, 0, 'not before the metrics tick');
    t.state.tick?.();
    assert.deepEqual(
      got.map((r) => r.event_id),
      ['a', 'b'],
    );
    adapter.refusals = [refusal('c')];
    poller.stop();
    assert.deepEqual(
      got.map((r) => r.event_id),
      ['a', 'b', 'c'],
    );
    assert.equal(poller.stats().refusals, 3);
  });

  it('[Symbol.dispose] and [Symbol.asyncDispose] stop the poller', async () => {
    const t = manualTimers();
    const poller = new EventPoller(new RingishAdapter(), 10, 100, 1000, { timers: t.timers });
    poller.start();
    poller[Symbol.dispose]();
    assert.equal(poller.isActive(), false);
    poller.start();
    await poller[Symbol.asyncDispose]();
    assert.equal(poller.isActive(), false);
  });

  it('an unknown option names the one meant', () => {
    assert.throws(
      () => new EventPoller(new SeedAdapter(), 10, 100, 1000, { maxInflight: 5 } as never),
      (e: unknown) =>
        e instanceof OptionsError && e.code === 'UNKNOWN_OPTION' && e.suggestion === 'maxInFlight' && /did you mean 'maxInFlight'/.test(e.message),
    );
  });

  it('events() is an async iterable that ends when the signal aborts', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1), event(2), event(3)];
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const controller = new AbortController();
    const got: string[] = [];
    const iterable = poller.events({ signal: controller.signal });
    t.runSoon();
    for await (const e of iterable) {
      got.push(e.event_id);
      if (got.length === 3) controller.abort();
    }
    assert.deepEqual(got, ['id-1', 'id-2', 'id-3']);
    poller.stop();
  });
});
