/**
 * Against the real libtasker_worker, on whichever runtime runs this file: 100k synthetic events of random
 * sizes (a third of them fragmented) through each transport with the seed's EventPoller, every completion
 * back, metrics consistent.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FfiCallError, FfiLibraryError } from '../src/errors.ts';
import { EventPoller } from '../src/events/event-poller.ts';
import { createFfiAdapter } from '../src/ffi/factory.ts';
import type { FfiStepEvent, Transport, WorkerLogRecord } from '../src/protocol.ts';
import { openAdapter, stopStrayWorker, successResult, waitFor } from './support/adapter.ts';

const EVENTS = Number(process.env.TASKER_TS_EVENTS ?? 100_000);

async function runThrough(transport: Transport) {
  const adapter = openAdapter();
  try {
    const result = adapter.bootstrapWorker({
      namespace: 'ts_integration',
      log_level: 'warn',
      log_stderr: false,
      transport,
      max_frame_size: 4096,
      events_capacity: 1 << 20,
      completions_capacity: 1 << 18,
      ffi_queue_capacity: 4096,
      source: { kind: 'synthetic', count: EVENTS, event_bytes: 600, event_bytes_max: 6000 },
    } as never);
    assert.equal(result.status, 'started');
    assert.equal(result.transport, transport);
    const poller = new EventPoller(adapter, 10, 100, 1000);
    const seen = new Set<string>();
    let fragmentedSized = 0;
    let errors = 0;
    poller.onStepEvent((event: FfiStepEvent) => {
      assert.equal(typeof event.task_sequence_step.task.task_uuid, 'string');
      assert.equal(event.step_uuid, event.task_sequence_step.workflow_step.workflow_step_uuid);
      seen.add(event.event_id);
      if (JSON.stringify(event).length > 4096 - 16) fragmentedSized += 1;
      adapter.completeStepEvent(event.event_id, successResult(event.step_uuid, { n: seen.size }));
    });
    poller.onError(() => {
      errors += 1;
    });
    poller.start();
    await waitFor(`${EVENTS} events on ${transport}`, () => seen.size >= EVENTS || errors > 0, 600_000);
    assert.equal(errors, 0);
    await waitFor('every completion to be counted', () => adapter.getFfiDispatchMetrics().completed_count >= EVENTS, 60_000);
    poller.stop();
    const metrics = adapter.getFfiDispatchMetrics();
    assert.equal(seen.size, EVENTS, 'every event arrived exactly once');
    assert.equal(metrics.completed_count, EVENTS);
    assert.equal(metrics.failed_count, 0);
    assert.equal(metrics.in_flight_count, 0);
    assert.equal(metrics.pending_count, 0);
    assert.equal(metrics.refused_completions, 0);
    assert.equal(adapter.inFlightCount(), 0);
    assert.ok(fragmentedSized > EVENTS / 10, `fragmented events were part of the run (${fragmentedSized})`);
    assert.equal(adapter.pollStepEvents(), null, 'nothing left: pollStepEvents() returns null');
    if (transport === 'ring') {
      assert.ok(metrics.ring, 'ring metrics come from the header');
      assert.equal(metrics.ring?.events_pending_bytes, 0);
      assert.equal(metrics.ring?.completions_queued, 0);
    }
    const stats = poller.stats();
    assert.ok(stats.ticks > 0);
    return { stats, metrics };
  } finally {
    adapter.stopWorker();
    adapter.close();
  }
}

describe('libtasker_worker end to end', () => {
  after(stopStrayWorker);

  it(`ring transport: ${EVENTS} events of random sizes, seed API, every completion back`, async () => {
    await runThrough('ring');
  });

  it(`ffi transport (the seed's per-poll path): ${EVENTS} events, every completion back`, async () => {
    await runThrough('ffi');
  });

  it('pollStepEvents() returns null when no event is pending, on both transports', () => {
    for (const transport of ['ring', 'ffi'] as const) {
      const adapter = openAdapter();
      adapter.bootstrapWorker({ transport, log_stderr: false, source: { kind: 'synthetic', count: 0 } });
      for (let i = 0; i < 1000; i++) assert.equal(adapter.pollStepEvents(), null);
      assert.equal(adapter.getWorkerStatus().running, true);
      adapter.stopWorker();
      assert.equal(adapter.isWorkerRunning(), false);
      adapter.close();
      adapter.close(); // idempotent
      assert.throws(
        () => adapter.pollStepEvents(),
        (e: unknown) => e instanceof FfiCallError && e.code === 'CLOSED',
      );
    }
  });

  it('bad bootstrap input is a typed error and changes nothing', () => {
    const adapter = openAdapter();
    assert.throws(
      () => adapter.bootstrapWorker({ transport: 'carrier-pigeon' } as never),
      (e: unknown) => e instanceof FfiCallError && e.code === 'BOOTSTRAP_FAILED' && /carrier-pigeon/.test(e.message),
    );
    assert.equal(adapter.isWorkerRunning(), false);
    adapter.close();
  });

  it('a missing library lists every path tried', () => {
    const saved = process.env.TASKER_LIBRARY_PATH;
    try {
      assert.throws(
        () => createFfiAdapter({ libraryPath: '/nonexistent/libtasker_worker.so' }),
        (e: unknown) => e instanceof FfiLibraryError && e.code === 'LIBRARY_NOT_FOUND' && e.triedPaths.includes('/nonexistent/libtasker_worker.so'),
      );
      process.env.TASKER_LIBRARY_PATH = '/also/missing.so';
      assert.throws(
        () => createFfiAdapter(),
        (e: unknown) => e instanceof FfiLibraryError && /\/also\/missing\.so/.test(e.message),
      );
    } finally {
      if (saved === undefined) delete process.env.TASKER_LIBRARY_PATH;
      else process.env.TASKER_LIBRARY_PATH = saved;
    }
  });

  it('Rust-side logs reach JS through the poller', async () => {
    const adapter = openAdapter();
    adapter.bootstrapWorker({ transport: 'ring', log_level: 'warn', log_stderr: false, source: { kind: 'synthetic', count: 1 } });
    const poller = new EventPoller(adapter, 1, 100, 1000, { metricsInterval: 5 });
    const records: WorkerLogRecord[] = [];
    poller.onLog((r) => records.push(r));
    let event: FfiStepEvent | null = null;
    poller.onStepEvent((e) => {
      event = e;
    });
    poller.start();
    try {
      await waitFor('the event', () => event !== null, 10_000);
      // Not a step result: sent (the event is in flight), then refused by the worker core, which logs a warning.
      assert.equal(adapter.completeStepEvent((event as unknown as FfiStepEvent).event_id, '{"not":"a result"}'), true);
      await waitFor('the refusal warning', () => records.some((r) => r.level === 'warn' && /refused/.test(r.message)), 10_000);
    } finally {
      poller.stop();
    }
    assert.equal(adapter.getFfiDispatchMetrics().refused_completions, 1);
    adapter.stopWorker();
    adapter.close();
  });
});
