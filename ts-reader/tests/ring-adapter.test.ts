/**
 * The adapters against the real library: the factory's choice, status, the doorbell, typed refusals at
 * the boundary, oversized results, and memory that is freed.
 */
import assert from 'node:assert/strict';
import process from 'node:process';
import { describe, it } from 'node:test';
import { EventPoller } from '../src/events/event-poller.ts';
import { BunFfiAdapter } from '../src/ffi/bun.ts';
import { DenoFfiAdapter } from '../src/ffi/deno.ts';
import { FfiCallError, FfiLibraryError } from '../src/ffi/errors.ts';
import { createFfiAdapter } from '../src/ffi/factory.ts';
import type { NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import { NodeFfiAdapter } from '../src/ffi/node.ts';
import { detectRuntime } from '../src/ffi/runtime.ts';
import type { FfiStepEvent } from '../src/ffi/types.ts';
import { openAdapter, successResult, waitFor } from './support/adapter.ts';

async function withAdapter(body: (adapter: NativeFfiAdapter) => Promise<void> | void): Promise<void> {
  const adapter = openAdapter();
  try {
    await body(adapter);
  } finally {
    if (adapter.isWorkerRunning()) adapter.stopWorker();
    adapter.close();
  }
}

async function oneEvent(adapter: NativeFfiAdapter): Promise<FfiStepEvent> {
  let event: FfiStepEvent | null = null;
  await waitFor('one event', () => {
    event ??= adapter.pollStepEvents();
    return event !== null;
  });
  return event as unknown as FfiStepEvent;
}

describe('adapters on the real library', () => {
  it("the factory picks this runtime's adapter, which loads libtasker_worker", () =>
    withAdapter((adapter) => {
      const expected = { node: NodeFfiAdapter, bun: BunFfiAdapter, deno: DenoFfiAdapter }[detectRuntime() as 'node' | 'bun' | 'deno'];
      assert.ok(adapter instanceof expected, adapter.constructor.name);
      assert.equal(adapter.runtime, detectRuntime());
      assert.match(adapter.libraryPath, /libtasker_worker/);
    }));

  it('bootstrap, status and stop: the seed fields and the ring details', () =>
    withAdapter((adapter) => {
      const result = adapter.bootstrapWorker({ namespace: 'status_ns', log_stderr: false, source: { kind: 'synthetic', count: 0 } });
      assert.equal(result.status, 'started');
      assert.equal(result.handle_id, result.worker_id);
      assert.equal(result.layout_major, 1);
      const again = adapter.bootstrapWorker({ namespace: 'status_ns' });
      assert.equal(again.status, 'already_running');
      assert.equal(again.worker_id, result.worker_id);
      const status = adapter.getWorkerStatus();
      assert.equal(status.running, true);
      assert.equal(status.worker_id, result.worker_id);
      assert.equal(status.worker_core_status, 'running');
      assert.equal(status.namespace, 'status_ns');
      assert.equal(status.transport, 'ring');
      assert.ok(status.region_path?.endsWith('.ring'));
      assert.ok(adapter.doorbellPath?.endsWith('.sock'));
      const stopped = JSON.parse(adapter.stopWorker()) as { status: string };
      assert.equal(stopped.status, 'stopped');
      assert.equal(adapter.getWorkerStatus().running, false);
      assert.equal(adapter.pollStepEvents(), null, 'a stopped worker has nothing to read');
    }));

  it('an idle poller sleeps on the doorbell and the worker wakes it between ticks', () =>
    withAdapter(async (adapter) => {
      adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 30, rate_per_sec: 60 } });
      // A 1 s tick: events that arrive between ticks can only be picked up early through the doorbell.
      const poller = new EventPoller(adapter, 1000, 100, 1000);
      const arrivals: number[] = [];
      poller.onStepEvent((e: FfiStepEvent) => {
        arrivals.push(Date.now());
        adapter.completeStepEvent(e.event_id, successResult(e.step_uuid));
      });
      poller.start();
      await waitFor('30 events', () => arrivals.length >= 30, 20_000);
      poller.stop();
      const stats = poller.stats();
      assert.ok(stats.doorbellWakes >= 10, `the doorbell woke the poller (${stats.doorbellWakes} wakes)`);
      assert.ok(stats.sleeps >= 10, `the poller slept between events (${stats.sleeps})`);
      assert.ok(stats.ticks < 5, `events did not wait for ticks (${stats.ticks} ticks)`);
      const m = adapter.getFfiDispatchMetrics();
      assert.ok((m.ring?.doorbells ?? 0) >= 10, `the worker counted its doorbells (${m.ring?.doorbells})`);
      assert.ok((m.ring?.consumer_sleeps ?? 0) >= 10);
    }));

  it('completions refuse a malformed event id with a typed error', () =>
    withAdapter((adapter) => {
      adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 0 } });
      assert.throws(
        () => adapter.completeStepEvent('not-a-uuid', '{}'),
        (e: unknown) => e instanceof FfiCallError && e.code === 'INVALID_ARGUMENT',
      );
      assert.throws(
        () => adapter.completeStepEvent('0190F3A2-7C1E-7B3A-9D2E-000000000001', '{}'),
        (e: unknown) => e instanceof FfiCallError && e.code === 'INVALID_ARGUMENT',
        'uppercase is not canonical',
      );
    }));

  it('a result larger than max_message_size becomes a failure result, never a hang or a drop', () =>
    withAdapter(async (adapter) => {
      adapter.bootstrapWorker({
        log_stderr: false,
        max_frame_size: 4096,
        max_message_size: 64 * 1024,
        source: { kind: 'synthetic', count: 1 },
      });
      const e = await oneEvent(adapter);
      adapter.completeStepEvent(e.event_id, successResult(e.step_uuid, { blob: 'b'.repeat(100_000) }));
      await waitFor('the failure to be counted', () => adapter.getFfiDispatchMetrics().failed_count === 1, 10_000);
      assert.equal(adapter.completionStats().oversized, 1);
      assert.equal(adapter.getFfiDispatchMetrics().completed_count, 0);
    }));

  it('a completion larger than the completions ring streams through it', () =>
    withAdapter(async (adapter) => {
      adapter.bootstrapWorker({
        log_stderr: false,
        max_frame_size: 4096,
        completions_capacity: 16 * 1024,
        source: { kind: 'synthetic', count: 1 },
      });
      const e = await oneEvent(adapter);
      adapter.completeStepEvent(e.event_id, successResult(e.step_uuid, { blob: 'c'.repeat(200_000) }));
      await waitFor('the completion to stream through', () => {
        adapter.flushCompletions();
        return adapter.getFfiDispatchMetrics().completed_count === 1;
      });
      assert.equal(adapter.completionStats().queued, 0);
    }));

  it('memory returned by the library is freed (300k JSON strings, RSS stays flat)', () =>
    withAdapter((adapter) => {
      adapter.bootstrapWorker({ transport: 'ffi', log_stderr: false, source: { kind: 'synthetic', count: 0 } });
      const round = () => {
        for (let i = 0; i < 100_000; i++) {
          adapter.getFfiDispatchMetrics();
          adapter.pollStepEvents();
        }
      };
      round(); // warm up allocators and JIT
      const before = process.memoryUsage().rss;
      round();
      round();
      const grown = (process.memoryUsage().rss - before) / 2 ** 20;
      // Each metrics string is ~400 bytes: leaking them would add ~80 MiB.
      assert.ok(grown < 40, `RSS grew ${grown.toFixed(1)} MiB over 200k metrics strings`);
    }));
});

describe('library version checks', () => {
  const dir = process.env.TASKER_FAKE_LIB_DIR;
  const skip = dir ? false : 'TASKER_FAKE_LIB_DIR not set (scripts/ts-test builds the fake libraries with gcc)';
  it('refuses a library of another C ABI major, or another layout major', { skip }, () => {
    for (const name of ['libfake_abi2.so', 'libfake_layout2.so']) {
      assert.throws(
        () => createFfiAdapter({ libraryPath: `${dir}/${name}` }),
        (e: unknown) => e instanceof FfiLibraryError && e.code === 'ABI_MISMATCH' && /matching versions/.test(e.message),
        name,
      );
    }
  });

  it('refuses a library that predates the version call', { skip }, () => {
    assert.throws(
      () => createFfiAdapter({ libraryPath: `${dir}/libfake_noabi.so` }),
      (e: unknown) => e instanceof FfiLibraryError && e.code === 'ABI_MISMATCH' && /predates/.test(e.message),
    );
  });
});
