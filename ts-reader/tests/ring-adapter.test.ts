/**
 * The adapters against the real library: the factory's choice, status, the doorbell, typed refusals at
 * the boundary, oversized results, and memory that is freed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import process from 'node:process';
import { describe, it } from 'node:test';
import { FfiCallError, FfiLibraryError } from '../src/errors.ts';
import { EventPoller } from '../src/events/event-poller.ts';
import { BunFfiAdapter } from '../src/ffi/bun.ts';
import { DenoFfiAdapter } from '../src/ffi/deno.ts';
import { pendingExitRemovals } from '../src/ffi/exit-cleanup.ts';
import { createFfiAdapter } from '../src/ffi/factory.ts';
import type { NativeLibrary } from '../src/ffi/native.ts';
import { adapterInternals, NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import { NodeFfiAdapter } from '../src/ffi/node.ts';
import type { CompletionRefusal, FfiStepEvent } from '../src/protocol.ts';
import { MAGIC_HI, MAGIC_LO } from '../src/ring/layout.ts';
import { RingTransport } from '../src/ring/transport.ts';
import { detectRuntime } from '../src/runtime.ts';
import { openAdapter, successResult, waitFor } from './support/adapter.ts';
import { buildRegion } from './support/region-builder.ts';

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
      assert.equal(status.closing, undefined, 'closing is absent while running');
      assert.ok(typeof result.max_event_bytes === 'number' && result.max_event_bytes > 0, `bootstrap max_event_bytes ${result.max_event_bytes}`);
      assert.equal(status.max_event_bytes, result.max_event_bytes, 'the status reports the same limit');
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

  it('completeStepEvent answers at once from the in-flight set: false for never read, completed, timed out', () =>
    withAdapter(async (adapter) => {
      adapter.bootstrapWorker({ log_stderr: false, completion_timeout_ms: 300, source: { kind: 'synthetic', count: 2 } });
      const never = '0190f3a2-7c1e-7b3a-9d2e-00000000dead';
      assert.equal(adapter.completeStepEvent(never, successResult(never)), false, 'never read');
      const first = await oneEvent(adapter);
      const second = await oneEvent(adapter);
      assert.equal(adapter.completeStepEvent(first.event_id, successResult(first.step_uuid)), true, 'in flight');
      assert.equal(adapter.completeStepEvent(first.event_id, successResult(first.step_uuid)), false, 'already completed');
      // The worker core times the second one out after 300 ms; once it has, this adapter says so too.
      await waitFor('the timeout', () => adapter.getFfiDispatchMetrics().timed_out_count === 1, 10_000);
      assert.equal(adapter.completeStepEvent(second.event_id, successResult(second.step_uuid)), false, 'timed out');
      assert.equal(adapter.completionStats().refused, 3);
      assert.equal(adapter.inFlightCount(), 0);
      const m = adapter.getFfiDispatchMetrics();
      assert.equal(m.completed_count, 1);
      assert.equal(m.refused_completions, 0, 'nothing refused was sent: the worker core never saw them');
    }));

  it('a refusal decided later by the worker core is reported with its event id (pollCompletionRefusals, onRefusal)', () =>
    withAdapter(async (adapter) => {
      adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 1 } });
      const e = await oneEvent(adapter);
      // Not a step result: the adapter cannot know, so it is sent (true); the worker core refuses it.
      assert.equal(adapter.completeStepEvent(e.event_id, '{"not":"a step result"}'), true);
      const poller = new EventPoller(adapter, 1, 100, 1000, { metricsInterval: 2 });
      const refusals: CompletionRefusal[] = [];
      poller.onRefusal((r) => refusals.push(r));
      poller.start();
      await waitFor('the refusal', () => refusals.length > 0, 10_000);
      poller.stop();
      assert.equal(refusals.length, 1);
      assert.equal(refusals[0]?.event_id, e.event_id);
      assert.equal(refusals[0]?.kind, 'invalid_result');
      assert.match(refusals[0]?.message ?? '', /invalid result/);
      assert.equal(adapter.getFfiDispatchMetrics().refused_completions, 1, 'and counted in the metrics');
      assert.deepEqual(adapter.pollCompletionRefusals(), { refusals: [], dropped: 0 }, 'each refusal is reported once');
    }));

  it('no view of shared memory is reachable: the transport, the native handle and the views are #private', () =>
    withAdapter((adapter) => {
      adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 0 } });
      const reachable = (o: object) => Object.getOwnPropertyNames(o).map((k) => (o as Record<string, unknown>)[k]);
      for (const value of reachable(adapter)) {
        assert.ok(!(value instanceof RingTransport), 'no RingTransport in a property');
        assert.ok(!ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer), 'no view in a property');
      }
      for (const key of ['ring', 'native', 'mapping', 'views']) assert.equal((adapter as unknown as Record<string, unknown>)[key], undefined, key);
      const transport = new RingTransport(buildRegion());
      for (const value of reachable(transport)) assert.ok(!ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer), 'no view on a transport either');
      assert.equal((transport as unknown as Record<string, unknown>).views, undefined);
      transport.close();
      adapter.stopWorker();
      adapter.close();
      assert.throws(
        () => adapter.pollStepEvents(),
        (e: unknown) => e instanceof FfiCallError && e.code === 'CLOSED',
      );
    }));

  it('mappings are released by handle: a repeated, unknown or address-form release never releases a live one', () =>
    withAdapter(async (adapter) => {
      adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 1 } });
      const { native } = adapterInternals(adapter);
      assert.equal(native.hasMappingHandles, true, 'this library exports map_ring_region_handle / release_ring_region_handle');
      const first = native.mapRingRegion();
      const second = native.mapRingRegion();
      assert.ok(first !== null && second !== null);
      assert.ok(first.handle !== null && Number.isSafeInteger(first.handle) && first.handle >= 1, `handle ${first.handle}`);
      assert.ok(second.handle !== null && second.handle > first.handle, 'each mapping gets a new, larger handle');
      assert.equal(native.releaseRingRegion(first), 1, 'released by its handle');
      assert.equal(native.releaseRingRegion(first), 0, 'a handle released already is refused');
      assert.equal(native.releaseRingRegion({ ...second, handle: second.handle + 1_000_000 }), 0, 'a handle never handed out is refused');
      assert.equal(native.releaseRingRegion({ ...second, handle: null }), 0, 'a handle mapping is never released by its address');
      // The refused releases released nothing: the second mapping still reads the region's header.
      const header = new DataView(second.buffer);
      assert.deepEqual([header.getUint32(0, true), header.getUint32(4, true)], [MAGIC_LO, MAGIC_HI]);
      assert.equal(native.releaseRingRegion(second), 1);
      // The adapter's own mapping (a handle of its own) still serves the worker's event.
      const e = await oneEvent(adapter);
      assert.equal(adapter.completeStepEvent(e.event_id, successResult(e.step_uuid)), true);
      adapter.flushCompletions();
      await waitFor('the completion applied', () => adapter.getFfiDispatchMetrics().completed_count === 1, 10_000);
    }));

  it('close() keeps the library loaded while a stopped worker still closes its source (status closing)', () => {
    // A stand-in library whose stopped worker is still closing: is_worker_running stays true after stop_worker.
    const calls: string[] = [];
    let stopped = false;
    const native: NativeLibrary = {
      path: 'closing-stand-in',
      callJson(symbol) {
        calls.push(symbol);
        if (symbol === 'stop_worker') stopped = true;
        if (symbol === 'get_worker_status') return JSON.stringify({ running: false, worker_core_status: 'stopped', closing: stopped });
        return '{"status":"stopped"}';
      },
      bootstrapWorker: () => JSON.stringify({ status: 'started', handle_id: 'w', worker_id: 'w', transport: 'ffi' }),
      completeStepEvent: () => 0,
      giveBackStepEvent: null,
      checkpointYieldStepEvent: null,
      clientCall: null,
      logMessage: null,
      isWorkerRunning: () => true,
      checkStarvationWarnings: () => {},
      cleanupTimeouts: () => {},
      abiVersion: () => (1 << 16) | (1 << 8) | 1,
      hasLogs: false,
      hasRefusals: false,
      hasDomainEvents: false,
      hasMappingHandles: true,
      mapRingRegion: () => null,
      releaseRingRegion: () => 0,
      unload: () => calls.push('unload'),
    };
    class StandIn extends NativeFfiAdapter {
      constructor() {
        super(detectRuntime(), native);
      }
    }
    const adapter = new StandIn();
    adapter.bootstrapWorker({ transport: 'ffi' });
    assert.equal(adapter.getWorkerStatus().closing, false);
    adapter.close();
    assert.ok(calls.includes('stop_worker'), 'close() stopped the worker it started');
    assert.ok(!calls.includes('unload'), 'the library is not unloaded while the worker closes');
    assert.equal(adapter.isWorkerRunning(), true, 'the library is still asked after close()');
    let unloadedFreshly = false;
    native.isWorkerRunning = () => false;
    native.unload = () => {
      unloadedFreshly = true;
    };
    const idle = new StandIn();
    idle.close();
    assert.equal(unloadedFreshly, true, 'a library with no worker running is unloaded');
  });

  it('close() stops the worker it started: never a running worker behind isWorkerRunning() === false', () => {
    const adapter = openAdapter();
    const boot = adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 0 } });
    assert.ok(pendingExitRemovals().includes(boot.region_path as string), 'the region is removed at exit unless stopped');
    adapter.close();
    assert.equal(adapter.isWorkerRunning(), false);
    const other = openAdapter();
    try {
      assert.equal(other.isWorkerRunning(), false, 'the library agrees: no worker runs');
      assert.equal(existsSync(boot.region_path as string), false, 'stopped: the region file is gone');
      assert.ok(!pendingExitRemovals().includes(boot.region_path as string));
    } finally {
      other.close();
    }
  });

  it('[Symbol.dispose] and [Symbol.asyncDispose] close the adapter (and stop its worker)', async () => {
    const sync = openAdapter();
    sync.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 0 } });
    sync[Symbol.dispose]();
    assert.throws(
      () => sync.getWorkerStatus(),
      (e: unknown) => e instanceof FfiCallError && e.code === 'CLOSED',
    );
    const viaAsync = openAdapter();
    viaAsync.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 0 } });
    await viaAsync[Symbol.asyncDispose]();
    assert.equal(viaAsync.isWorkerRunning(), false);
  });

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
