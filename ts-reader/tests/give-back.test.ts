/**
 * Give-backs and checkpoints against the real libtasker_worker and a throwaway step store, on both
 * transports, and the events() loop's give-back counted from the worker core's own metrics (issue 17 item 3).
 *
 * These need the worker core of layout 1.1: a region created with `layout_minor` 1 that acts on GIVE_BACK and
 * CHECKPOINT records, and the `give_back_step_event` / `checkpoint_yield_step_event` exports. Against a
 * library without them they fail (with `UnsupportedByWorkerError`, or `supports()` false): nothing is faked.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EventPoller } from '../src/events/event-poller.ts';
import type { NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import type { FfiStepEvent, StepCheckpoint, Transport } from '../src/protocol.ts';
import { openAdapter, stopStrayWorker, successResult, waitFor } from './support/adapter.ts';
import { enqueue, storeSteps, tempDir } from './support/store.ts';

/** A worker on a fresh store holding `tasks` linear tasks (their first steps ready). */
async function withStoreWorker(transport: Transport, tasks: number, body: (adapter: NativeFfiAdapter, url: string) => Promise<void>): Promise<void> {
  const dir = tempDir(`giveback-${transport}`);
  const url = `sqlite:${dir.path}/steps.db`;
  enqueue(url, tasks);
  const adapter = openAdapter();
  try {
    adapter.bootstrapWorker({ transport, log_stderr: false, log_level: 'warn', database_url: url, completion_timeout_ms: 120_000 });
    await body(adapter, url);
  } finally {
    if (adapter.isWorkerRunning()) adapter.stopWorker();
    adapter.close();
    dir.remove();
  }
}

async function nextEvent(adapter: NativeFfiAdapter, what = 'an event'): Promise<FfiStepEvent> {
  let event: FfiStepEvent | null = null;
  await waitFor(what, () => {
    event ??= adapter.pollStepEvents();
    return event !== null;
  });
  return event as unknown as FfiStepEvent;
}

describe('give-backs and checkpoints on the real library (need the layout 1.1 worker core)', () => {
  after(stopStrayWorker);

  for (const transport of ['ring', 'ffi'] as const) {
    it(`${transport}: a given-back step is offered again without using an attempt`, () =>
      withStoreWorker(transport, 1, async (adapter, url) => {
        assert.equal(adapter.supports('give_back'), true, 'the worker core takes give-backs');
        const first = await nextEvent(adapter);
        const never = '0190f3a2-7c1e-7b3a-9d2e-00000000dead';
        assert.equal(adapter.giveBackStepEvents([first.event_id, never]), 1, 'the event read is given back; an unknown id is refused');
        assert.equal(adapter.giveBackStepEvents([first.event_id]), 0, 'given back once only');
        assert.equal(adapter.inFlightCount(), 0);
        const again = await nextEvent(adapter, 'the step offered again');
        assert.equal(again.step_uuid, first.step_uuid);
        assert.equal(again.task_sequence_step.workflow_step.attempts, first.task_sequence_step.workflow_step.attempts, 'no attempt used');
        assert.equal(adapter.completeStepEvent(again.event_id, successResult(again.step_uuid)), true);
        await waitFor('the completion', () => adapter.getFfiDispatchMetrics().completed_count === 1, 30_000);
        const m = adapter.getFfiDispatchMetrics();
        assert.equal(m.failed_count, 0);
        assert.equal(m.in_flight_count, 0);
        assert.equal(storeSteps(url).error, 0);
      }));

    it(`${transport}: a checkpoint yields the step, which comes back with workflow_step.checkpoint set`, () =>
      withStoreWorker(transport, 1, async (adapter) => {
        assert.equal(adapter.supports('checkpoint'), true, 'the worker core takes checkpoints');
        const first = await nextEvent(adapter);
        const checkpoint: StepCheckpoint = { step_uuid: first.step_uuid, cursor: { page: 2 }, items_processed: 40 };
        assert.equal(adapter.checkpointYieldStepEvent(first.event_id, checkpoint), true);
        assert.equal(adapter.checkpointYieldStepEvent(first.event_id, checkpoint), false, 'no longer in flight');
        const again = await nextEvent(adapter, 'the step dispatched again');
        assert.equal(again.step_uuid, first.step_uuid);
        const seen = again.task_sequence_step.workflow_step.checkpoint as Record<string, unknown> | undefined;
        assert.deepEqual({ cursor: seen?.cursor, items_processed: seen?.items_processed }, { cursor: { page: 2 }, items_processed: 40 });
        assert.equal(again.task_sequence_step.workflow_step.attempts, first.task_sequence_step.workflow_step.attempts, 'the yield used no attempt');
        assert.equal(adapter.completeStepEvent(again.event_id, successResult(again.step_uuid)), true);
        await waitFor('the completion', () => adapter.getFfiDispatchMetrics().completed_count === 1, 30_000);
        assert.equal(adapter.getFfiDispatchMetrics().failed_count, 0);
      }));
  }

  it('ring: break out of events() with events queued: they are given back, 0 left in flight (the worker core counts)', () =>
    withStoreWorker('ring', 40, async (adapter) => {
      assert.equal(adapter.supports('give_back'), true, 'the worker core takes give-backs');
      // Let the worker core put many events in the ring, so that one poll reads more than the loop takes.
      await waitFor('20 events in the ring', () => (adapter.getFfiDispatchMetrics().pending_count ?? 0) >= 20, 60_000);
      const poller = new EventPoller(adapter, 10, 100, 1000);
      const taken: string[] = [];
      for await (const event of poller.events()) {
        taken.push(event.event_id);
        assert.equal(adapter.completeStepEvent(event.event_id, successResult(event.step_uuid)), true);
        if (taken.length === 3) break;
      }
      assert.equal(poller.isActive(), false);
      const read = poller.stats().events;
      assert.ok(read > 3, `the poll read more than the loop took (${read})`);
      assert.equal(adapter.completionStats().givenBack, read - 3, 'every event read and not yielded was given back');
      assert.equal(adapter.inFlightCount(), 0);
      // The worker core counts an event in flight only once its pump saw the reader pass it: wait for its
      // own account of all `read` events (in_flight_count alone is 0 before the pump looked, too).
      await waitFor(
        'the worker core to account every event read',
        () => {
          const m = adapter.getFfiDispatchMetrics() as { completed_count: number; in_flight_count: number; given_back_count?: number };
          return m.completed_count === 3 && m.given_back_count === read - 3 && m.in_flight_count === 0;
        },
        30_000,
      );
      const m = adapter.getFfiDispatchMetrics();
      assert.equal(m.failed_count, 0, 'given back, not failed');
      assert.equal(m.refused_completions, 0);
    }));
});
