/**
 * TaskerWorker against the real library: handlers by handler_class, failures from throws, per-handler
 * timeouts, missing handlers, graceful stop and SIGTERM. Every delivered event gets exactly one completion.
 */
import assert from 'node:assert/strict';
import process from 'node:process';
import { describe, it } from 'node:test';
import { OptionsError } from '../src/errors.ts';
import { EventNames } from '../src/events/event-names.ts';
import type { BootstrapConfig, CompletionRefusal, FfiDispatchMetrics } from '../src/protocol.ts';
import { PermanentError } from '../src/worker/errors.ts';
import { TaskerWorker } from '../src/worker/worker.ts';
import { openAdapter, sleep, waitFor } from './support/adapter.ts';

const HANDLER = 'LinearWorkflow.StepHandlers.LinearStep2Handler';

function bootstrap(count: number, extra: BootstrapConfig = {}): BootstrapConfig {
  return { namespace: 'ts_worker', log_level: 'warn', transport: 'ring', source: { kind: 'synthetic', count }, ...extra };
}

/** Runs `body`; whatever happens, the worker is stopped and the adapter closed (one worker per process). */
async function withWorker(worker: TaskerWorker, adapter: { close(): void }, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await worker.stop();
    adapter.close();
  }
}

async function metricsWhen(worker: TaskerWorker, done: (m: FfiDispatchMetrics) => boolean): Promise<FfiDispatchMetrics> {
  let last: FfiDispatchMetrics | null = null;
  worker.emitter.subscribe(EventNames.METRICS_UPDATED, (m: FfiDispatchMetrics) => {
    last = m;
  });
  await waitFor('metrics', () => last !== null && done(last), 60_000);
  return last as unknown as FfiDispatchMetrics;
}

describe('TaskerWorker', () => {
  it('runs handlers by handler_class with a concurrency limit; throws become failures', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(3000), concurrency: 8, handleSignals: false });
    let running = 0;
    let peak = 0;
    let calls = 0;
    worker.register(HANDLER, async ({ step, dependencyResults, signal }) => {
      assert.equal(typeof step.workflow_step_uuid, 'string');
      assert.ok(dependencyResults.results);
      assert.equal(signal.aborted, false);
      calls += 1;
      const n = calls;
      running += 1;
      peak = Math.max(peak, running);
      await sleep(n % 5);
      running -= 1;
      if (n % 3 === 0) throw new PermanentError(`step ${n} refuses`);
      return { value: n };
    });
    const failures: unknown[] = [];
    worker.emitter.subscribe(EventNames.STEP_EXECUTION_FAILED, ({ result }) => failures.push(result));
    await withWorker(worker, adapter, async () => {
      await worker.start();
      const m = await metricsWhen(worker, (x) => x.completed_count + x.failed_count >= 3000);
      assert.equal(m.completed_count, 2000);
      assert.equal(m.failed_count, 1000);
      assert.equal(m.refused_completions, 0);
      assert.ok(peak <= 8, `concurrency limit held (peak ${peak})`);
      assert.ok(peak > 1, `handlers ran concurrently (peak ${peak})`);
      const failure = failures[0] as { error: { error_type: string; retryable: boolean; message: string; backtrace: string[] } };
      assert.equal(failure.error.error_type, 'PermanentError');
      assert.equal(failure.error.retryable, false);
      assert.match(failure.error.message, /refuses/);
      assert.ok(failure.error.backtrace.length > 0);
      await worker.stop();
      assert.equal(adapter.isWorkerRunning(), false);
      const stats = worker.stats();
      assert.equal(stats.received, 3000);
      assert.equal(stats.succeeded + stats.failed, 3000);
      adapter.close();
    });
  });

  it('a handler that never returns times out: its slot is freed and a retryable failure arrives', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(12), concurrency: 4, handlerTimeoutMs: 100, handleSignals: false });
    let aborted = 0;
    worker.register(HANDLER, ({ signal }) => {
      signal.addEventListener('abort', () => {
        aborted += 1;
      });
      return new Promise(() => {}); // never settles
    });
    await withWorker(worker, adapter, async () => {
      await worker.start();
      const m = await metricsWhen(worker, (x) => x.failed_count >= 12);
      assert.equal(m.failed_count, 12, 'all 12 arrived as failures though only 4 could run at once');
      assert.equal(aborted, 12, 'each handler saw its AbortSignal fire');
      assert.equal(worker.stats().timedOut, 12);
      await worker.stop();
      adapter.close();
    });
  });

  it('timeouts without a signal read, a signal first read after the timeout, and a late outcome (one deadline timer for all)', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(9), concurrency: 9, handlerTimeoutMs: 150, handleSignals: false });
    const failures: Array<{ error: { error_type: string; retryable: boolean; message: string } }> = [];
    worker.emitter.subscribe(EventNames.STEP_EXECUTION_FAILED, ({ result }) => failures.push(result));
    const lateSignals: Array<{ aborted: boolean; reason: string }> = [];
    let n = 0;
    worker.register(HANDLER, (context) => {
      const i = n++;
      if (i % 3 === 0) return new Promise(() => {}); // never settles, never reads its signal
      if (i % 3 === 1) {
        // Reads its signal only after the deadline, then settles: a late outcome.
        return sleep(400).then(() => {
          lateSignals.push({ aborted: context.signal.aborted, reason: String((context.signal.reason as Error)?.message) });
          return { late: true };
        });
      }
      return sleep(20).then(() => ({ quick: true })); // well inside the deadline
    });
    await withWorker(worker, adapter, async () => {
      await worker.start();
      await waitFor('6 timeouts and 3 late outcomes', () => failures.length >= 6 && worker.stats().lateOutcomes >= 3, 10_000);
      assert.equal(failures.length, 6);
      assert.ok(failures.every((f) => f.error.error_type === 'handler_timeout' && f.error.retryable));
      assert.match(failures[0]?.error.message ?? '', /timed out after 150 ms/);
      assert.equal(worker.stats().succeeded, 3, 'the quick ones succeeded');
      assert.equal(worker.stats().timedOut, 6);
      assert.equal(worker.stats().lateOutcomes, 3);
      assert.deepEqual(lateSignals, Array(3).fill({ aborted: true, reason: `handler '${HANDLER}' timed out after 150 ms` }));
      assert.equal(worker.stats().running, 0, 'a timed-out handler no longer counts as running');
      await worker.stop();
      adapter.close();
    });
  });

  it('stop() past shutdownTimeoutMs fails running steps as worker_shutdown and aborts their signals', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(4), concurrency: 4, shutdownTimeoutMs: 200, handleSignals: false });
    const failures: Array<{ error: { error_type: string; retryable: boolean } }> = [];
    worker.emitter.subscribe(EventNames.STEP_EXECUTION_FAILED, ({ result }) => failures.push(result));
    const reasons: string[] = [];
    worker.register(HANDLER, ({ signal }) => {
      signal.addEventListener('abort', () => reasons.push((signal.reason as Error).message));
      return new Promise(() => {}); // never settles
    });
    await withWorker(worker, adapter, async () => {
      await worker.start();
      await waitFor('4 handlers running', () => worker.stats().running === 4, 10_000);
      await worker.stop();
      assert.equal(failures.length, 4);
      assert.ok(failures.every((f) => f.error.error_type === 'worker_shutdown' && f.error.retryable));
      assert.deepEqual(reasons, Array(4).fill('worker shutting down'));
      assert.equal(worker.stats().running, 0);
      adapter.close();
    });
  });

  it('a step with no registered handler fails as handler_not_found, not retryable', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(5), handleSignals: false });
    const results: Array<{ error: { error_type: string; retryable: boolean } }> = [];
    worker.emitter.subscribe(EventNames.STEP_EXECUTION_FAILED, ({ result }) => results.push(result));
    await withWorker(worker, adapter, async () => {
      await worker.start();
      await waitFor('5 failures', () => results.length >= 5, 10_000);
      assert.equal(results[0]?.error.error_type, 'handler_not_found');
      assert.equal(results[0]?.error.retryable, false);
      assert.equal(worker.stats().missingHandler, 5);
      await worker.stop();
      adapter.close();
    });
  });

  it('stop() is graceful: running handlers finish, their completions reach the worker, then it stops', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(50), concurrency: 10, handleSignals: false });
    let finished = 0;
    worker.register(HANDLER, async () => {
      await sleep(50);
      finished += 1;
      return {};
    });
    await withWorker(worker, adapter, async () => {
      await worker.start();
      await waitFor('handlers running', () => worker.stats().running > 0, 10_000);
      await worker[Symbol.asyncDispose]();
      assert.equal(worker.stats().running, 0);
      assert.equal(worker.stats().succeeded, finished);
      assert.ok(finished >= 10, `the handlers that were running finished (${finished})`);
      assert.equal(worker.stats().lateOutcomes, 0);
      assert.equal(adapter.isWorkerRunning(), false);
      await worker.stop(); // idempotent
      adapter.close();
    });
  });

  it('SIGTERM drains and stops the worker', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(0), handleSignals: true });
    worker.register(HANDLER, () => ({}));
    await withWorker(worker, adapter, async () => {
      await worker.start();
      const stopped = new Promise<void>((resolve) => worker.emitter.subscribe(EventNames.WORKER_STOPPED, () => resolve()));
      process.emit('SIGTERM');
      await stopped;
      assert.equal(worker.isRunning, false);
      assert.equal(adapter.isWorkerRunning(), false);
      adapter.close();
    });
  });

  it('a result for a step the worker core already timed out is refused at once: step.completion.refused', async () => {
    const adapter = openAdapter();
    // The handler outlives the completion timeout (its own timeout is longer): its result comes too late.
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(1, { completion_timeout_ms: 200 }), handlerTimeoutMs: 60_000, handleSignals: false });
    worker.register(HANDLER, async () => {
      await waitFor('the worker core to time the step out', () => adapter.getFfiDispatchMetrics().timed_out_count === 1, 30_000);
      return { late: true };
    });
    const refusals: CompletionRefusal[] = [];
    worker.emitter.subscribe(EventNames.STEP_COMPLETION_REFUSED, (r: CompletionRefusal) => refusals.push(r));
    let sent = 0;
    worker.emitter.subscribe(EventNames.STEP_COMPLETION_SENT, () => {
      sent += 1;
    });
    await withWorker(worker, adapter, async () => {
      await worker.start();
      await waitFor('the refusal', () => refusals.length === 1, 30_000);
      assert.equal(refusals[0]?.kind, 'not_in_flight');
      assert.equal(worker.stats().refused, 1);
      assert.equal(sent, 0, 'not reported as sent');
      await worker.stop();
    });
  });

  it('done resolves after stop(); it is created when first read', async () => {
    const adapter = openAdapter();
    const worker = new TaskerWorker({ adapter, bootstrap: bootstrap(0), handleSignals: false });
    await withWorker(worker, adapter, async () => {
      await worker.start();
      let settled = false;
      const done = worker.done.then(() => {
        settled = true;
      });
      assert.equal(worker.done, worker.done, 'one promise');
      await sleep(20);
      assert.equal(settled, false, 'pending while the worker runs');
      await worker.stop();
      await done;
      assert.equal(settled, true);
      await worker.done; // read after the end: already resolved
    });
  });

  it('an unknown option names the one meant', () => {
    assert.throws(
      () => new TaskerWorker({ handlerTimeoutMS: 5 } as never),
      (e: unknown) => e instanceof OptionsError && e.code === 'UNKNOWN_OPTION' && e.key === 'handlerTimeoutMS' && e.suggestion === 'handlerTimeoutMs',
    );
    assert.throws(
      () => new TaskerWorker({ concurency: 5 } as never),
      (e: unknown) => e instanceof OptionsError && e.suggestion === 'concurrency',
    );
  });
});
