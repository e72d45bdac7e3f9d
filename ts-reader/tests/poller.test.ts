/** EventPoller cadence and draining, with counted ticks (no wall-clock timing). */
import assert from 'node:assert/strict';
import process from 'node:process';
import { describe, it } from 'node:test';
import { EventDecodeError, OptionsError, RingPeerError, RingReadError, RingSealedError, UnsupportedByWorkerError, WorkerFaultError } from '../src/errors.ts';
import { EventNames } from '../src/events/event-names.ts';
import { EventPoller } from '../src/events/event-poller.ts';
import type { FfiAdapter } from '../src/ffi/adapter.ts';
import type { RingAwareAdapter } from '../src/ffi/native-adapter.ts';
import type { CompletionRefusal, FfiDispatchMetrics, FfiStepEvent, WorkerLogRecord } from '../src/protocol.ts';
import { TaskerWorker } from '../src/worker/worker.ts';

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
  override completeStepEvent(eventId = ''): boolean {
    super.completeStepEvent();
    this.completed.push(eventId);
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
  completionsQueued() {
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
  /** The worker core's fault, once it has one (checkWorker throws it; the status reports it). */
  fault: WorkerFaultError | null = null;
  override getWorkerStatus() {
    return this.fault ? { running: false, error: { phase: this.fault.phase as 'running', reason: this.fault.reason } } : { running: true };
  }
  workerChecks = 0;
  checkWorker() {
    this.workerChecks += 1;
    if (this.fault) throw this.fault;
  }
  /** Event ids given back, one array per call. */
  givenBack: string[][] = [];
  canGiveBack = true;
  giveBackStepEvents(ids: readonly string[]) {
    this.givenBack.push([...ids]);
    this.inFlight -= ids.length;
    return ids.length;
  }
  checkpointYieldStepEvent() {
    this.inFlight -= 1;
    return true;
  }
  supports() {
    return this.canGiveBack;
  }
  /** Completions sent, by event id. */
  completed: string[] = [];
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

  it('onMetrics with a `wanted` predicate reads the metrics only while it holds', () => {
    const adapter = new SeedAdapter();
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    let wanted = false;
    let seen = 0;
    poller.onMetrics(
      () => (seen += 1),
      () => wanted,
    );
    poller.start();
    for (let i = 0; i < 300; i++) t.state.tick?.();
    assert.equal(adapter.calls.metrics, 0, 'no listener: no metrics call');
    wanted = true;
    for (let i = 0; i < 300; i++) t.state.tick?.();
    assert.equal(adapter.calls.metrics, 3);
    assert.equal(seen, 3);
    assert.equal(adapter.calls.starvation, 6, "the seed's starvation check runs every 100 ticks regardless");
    poller.stop();
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

  it('room freed by completions made during a poll is read on at once, after a yield, not at the next tick', () => {
    const adapter = new RingishAdapter();
    adapter.queue = Array.from({ length: 240 }, (_, i) => event(i));
    const t = manualTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, maxInFlight: 20 });
    let got = 0;
    poller.onStepEvent(() => {
      got += 1;
      adapter.completeStepEvent();
    });
    poller.start();
    t.runSoon();
    assert.equal(got, 240, 'every ready event, in polls of maxInFlight chained through soon()');
    assert.equal(poller.stats().ticks, 0, 'no tick needed');
    const polls = poller.stats().extraPolls;
    assert.ok(polls >= 12 && polls <= 13, `one poll per maxInFlight events (the event loop runs between them): ${polls}`);
    assert.equal(poller.stats().backpressured, 0);
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
});

/** Timers whose extra polls run as microtasks (no wall clock): the loop and the poller interleave. */
function microtaskTimers() {
  const t = manualTimers();
  return { ...t, timers: { ...t.timers, soon: (fn: () => void) => queueMicrotask(fn) } };
}

/** Lets pending microtasks and I/O callbacks run (an ordering aid, not a timed assertion). */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('EventPoller.events(): the iterator keeps its promise (issue 17 item 3)', () => {
  it('break: the poller stops reading, and the events read but not yielded are given back', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = Array.from({ length: 50 }, (_, i) => event(i));
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers, maxInFlight: 20 });
    const got: string[] = [];
    for await (const e of poller.events()) {
      got.push(e.event_id);
      adapter.completeStepEvent(e.event_id);
      if (got.length === 5) break;
    }
    assert.deepEqual(got, ['id-0', 'id-1', 'id-2', 'id-3', 'id-4']);
    assert.equal(poller.isActive(), false, 'ending the loop stops the poller');
    const read = 50 - adapter.queue.length;
    assert.deepEqual(
      adapter.givenBack.flat(),
      Array.from({ length: read - 5 }, (_, i) => `id-${i + 5}`),
      'every event read and not yielded is given back',
    );
    assert.equal(adapter.inFlight, 0, 'nothing stranded in flight');
    const left = adapter.queue.length;
    for (let i = 0; i < 5; i++) t.state.tick?.();
    await settle();
    assert.equal(adapter.queue.length, left, 'nothing is read after the loop ended');
  });

  it('abort inside the loop: the next step throws signal.reason (AbortError), the rest is given back', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1), event(2), event(3), event(4), event(5)];
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const controller = new AbortController();
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of poller.events({ signal: controller.signal })) {
          got.push(e.event_id);
          adapter.completeStepEvent(e.event_id);
          if (got.length === 3) controller.abort();
        }
      })(),
      (e: unknown) => e instanceof Error && e.name === 'AbortError' && e === controller.signal.reason,
    );
    assert.deepEqual(got, ['id-1', 'id-2', 'id-3']);
    assert.deepEqual(adapter.givenBack.flat(), ['id-4', 'id-5']);
    assert.equal(poller.isActive(), false);
    assert.equal(adapter.inFlight, 0);
  });

  it('abort while the loop waits: it throws at once with the reason given', async () => {
    const adapter = new RingishAdapter();
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const controller = new AbortController();
    const loop = (async () => {
      for await (const _ of poller.events({ signal: controller.signal })) assert.fail('no event was published');
    })();
    await settle();
    assert.equal(poller.isActive(), true, 'the loop started the poller and waits');
    const reason = new Error('enough');
    controller.abort(reason);
    await assert.rejects(loop, (e: unknown) => e === reason);
    assert.equal(poller.isActive(), false);
  });

  it('an already aborted signal: the loop throws before anything is read', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1)];
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: microtaskTimers().timers });
    await assert.rejects(
      (async () => {
        for await (const _ of poller.events({ signal: AbortSignal.abort() })) assert.fail('nothing is yielded');
      })(),
      (e: unknown) => e instanceof Error && e.name === 'AbortError',
    );
    assert.equal(adapter.queue.length, 1);
    assert.equal(poller.isActive(), false);
  });

  it('a fatal poller error is thrown into a waiting loop at once', async () => {
    const adapter = new RingishAdapter();
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const errors: Error[] = [];
    poller.onError((e) => errors.push(e));
    const loop = (async () => {
      for await (const _ of poller.events()) assert.fail('no event was published');
    })();
    await settle();
    const fatal = new RingReadError('MISALIGNED', 12, 'consumer 0 or producer 12 is not a multiple of 8');
    adapter.throwOnce = fatal;
    t.state.tick?.();
    await assert.rejects(loop, (e: unknown) => e === fatal);
    assert.equal(poller.failure, fatal);
    assert.deepEqual(errors, [fatal], 'reported once to onError too');
  });

  it('a fatal error while the loop runs its body is thrown at its next step; the queued events are given back', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1), event(2), event(3)];
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    poller.onError(() => {});
    const fatal = new RingPeerError('PEER_DEAD', "the events ring's producer (pid 42) is dead");
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of poller.events()) {
          got.push(e.event_id);
          adapter.completeStepEvent(e.event_id);
          adapter.maintainError = fatal;
          for (let i = 0; i < 10; i++) t.state.tick?.(); // the maintenance tick finds the dead producer
        }
      })(),
      (e: unknown) => e === fatal,
    );
    assert.deepEqual(got, ['id-1']);
    assert.deepEqual(adapter.givenBack.flat(), ['id-2', 'id-3']);
  });

  it('the worker core sealed the ring: the poller stops quietly, the loop gets what was read, then ends', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1), event(2)];
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const errors: Error[] = [];
    const sealed: RingSealedError[] = [];
    poller.onError((e) => errors.push(e));
    poller.onSealed((e) => sealed.push(e));
    const got: string[] = [];
    for await (const e of poller.events()) {
      got.push(e.event_id);
      adapter.completeStepEvent(e.event_id);
      if (got.length === 1) {
        adapter.throwOnce = new RingSealedError('the events ring is sealed');
        t.state.tick?.();
      }
    }
    assert.deepEqual(got, ['id-1', 'id-2'], 'the events read before the seal are still yielded');
    assert.equal(poller.isActive(), false);
    assert.deepEqual(errors, [], 'not an error');
    assert.equal(poller.failure, null);
    assert.equal(sealed.length, 1);
    assert.equal(poller.sealed, sealed[0]);
    assert.equal(sealed[0]?.code, 'RING_SEALED');
    assert.deepEqual(adapter.givenBack, []);
  });

  it('a ring sealed by a worker core that stopped on its own (status.error) is fatal: WorkerFaultError, not a quiet end', async () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1)];
    const t = microtaskTimers();
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: t.timers });
    const errors: Error[] = [];
    const sealed: RingSealedError[] = [];
    poller.onError((e) => errors.push(e));
    poller.onSealed((e) => sealed.push(e));
    const got: string[] = [];
    await assert.rejects(
      async () => {
        for await (const e of poller.events()) {
          got.push(e.event_id);
          adapter.completeStepEvent(e.event_id);
          adapter.fault = new WorkerFaultError('running', 'the completions ring is corrupt');
          adapter.throwOnce = new RingSealedError('the events ring is sealed');
          t.state.tick?.();
        }
      },
      (e: unknown) => e instanceof WorkerFaultError,
      'the waiting loop gets the fatal error',
    );
    assert.deepEqual(got, ['id-1']);
    assert.equal(poller.isActive(), false);
    assert.ok(poller.failure instanceof WorkerFaultError, `failure: ${poller.failure}`);
    assert.match(poller.failure.message, /the completions ring is corrupt/);
    assert.deepEqual(
      errors.map((e) => e.name),
      ['WorkerFaultError'],
    );
    assert.deepEqual(sealed, [], 'not reported as a seal');
    assert.equal(poller.sealed, null);
  });

  it('poller.stop() while the loop waits ends the loop (no hang on any runtime)', async () => {
    const poller = new EventPoller(new RingishAdapter(), 10, 100, 1000, { timers: microtaskTimers().timers });
    const loop = (async () => {
      let n = 0;
      for await (const _ of poller.events()) n += 1;
      return n;
    })();
    await settle();
    poller.stop();
    assert.equal(await loop, 0);
  });

  it('a worker core that cannot take give-backs: the rest is completed as retryable failures instead', async () => {
    const adapter = new RingishAdapter();
    adapter.canGiveBack = false;
    adapter.queue = [event(1), event(2), event(3)];
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: microtaskTimers().timers });
    for await (const e of poller.events()) {
      adapter.completeStepEvent(e.event_id);
      break;
    }
    assert.deepEqual(adapter.givenBack, []);
    assert.deepEqual(adapter.completed, ['id-1', 'id-2', 'id-3']);
    assert.equal(adapter.inFlight, 0);
  });
});

describe('EventPoller: give-backs and checkpoints', () => {
  it('delegate to a ring-aware adapter; a seed-style adapter refuses them with UNSUPPORTED_BY_WORKER', () => {
    const adapter = new RingishAdapter();
    adapter.queue = [event(1)];
    const poller = new EventPoller(adapter, 10, 100, 1000, { timers: manualTimers().timers });
    assert.equal(poller.giveBackStepEvents(['id-1']), 1);
    assert.deepEqual(adapter.givenBack, [['id-1']]);
    assert.equal(poller.checkpointYieldStepEvent('id-2', { step_uuid: 's', cursor: 1, items_processed: 1 }), true);
    const seed = new EventPoller(new SeedAdapter(), 10, 100, 1000, { timers: manualTimers().timers });
    for (const call of [() => seed.giveBackStepEvents(['x']), () => seed.checkpointYieldStepEvent('x', { step_uuid: 's', cursor: 0, items_processed: 0 })]) {
      assert.throws(call, (e: unknown) => e instanceof UnsupportedByWorkerError && e.code === 'UNSUPPORTED_BY_WORKER');
    }
  });
});

describe('TaskerWorker on a sealed ring', () => {
  it('follows the worker core with a graceful stop: no worker.error, done resolves, exit code unchanged', async () => {
    const adapter = new RingishAdapter();
    adapter.throwOnce = new RingSealedError('the events ring is sealed');
    const logs: WorkerLogRecord[] = [];
    const worker = new TaskerWorker({ adapter, handleSignals: false, logger: (r) => logs.push(r) });
    const errors: unknown[] = [];
    worker.emitter.on(EventNames.WORKER_ERROR, (e) => errors.push(e));
    const exitCode = process.exitCode;
    await worker.start();
    await worker.done;
    assert.equal(worker.isRunning, false);
    assert.deepEqual(errors, []);
    assert.equal(process.exitCode, exitCode);
    assert.ok(
      logs.some((r) => r.level === 'info' && r.fields.code === 'RING_SEALED'),
      JSON.stringify(logs),
    );
    assert.ok(!logs.some((r) => r.level === 'error'));
  });
});
