/**
 * Child of wake-legs.test.ts, started with TASKER_WAKE_LEGS set to a directory (in the process's real
 * environment: Bun's `process.env` does not reach the library's): 20 events at 100/s through an
 * instrumented poller with a 1 s tick, so they arrive through the doorbell. Reports the JS side's records,
 * whether the pump's file existed before the worker stopped, and the file's contents after.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { ringTransportOf } from '../../bench/support.ts';
import { JsWakeRecorder } from '../../bench/wake-legs.ts';
import { EventPoller } from '../../src/events/event-poller.ts';
import type { FfiStepEvent } from '../../src/protocol.ts';
import { transportInternals } from '../../src/ring/transport.ts';
import { openAdapter, successResult, waitFor } from '../support/adapter.ts';
import { report } from '../support/child.ts';

const dir = process.env.TASKER_WAKE_LEGS as string;
const adapter = openAdapter();
adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 20, rate_per_sec: 100, stamp_enqueued_at: true } });
const file = join(dir, `wake-legs-${adapter.getWorkerStatus().worker_id}.json`);
const now = () => (performance.timeOrigin + performance.now()) * 1000;
const recorder = new JsWakeRecorder(now);
const ring = ringTransportOf(adapter);
if (ring === null) throw new Error('not on the ring transport');
recorder.instrument(adapter, transportInternals(ring).reader);
const poller = new EventPoller(adapter, 1000, 100, 1000, { wakeTrace: recorder.trace });
poller.onStepEvent((e: FfiStepEvent) => {
  recorder.handler(e, now());
  adapter.completeStepEvent(e.event_id, successResult(e.step_uuid));
});
poller.start();
await waitFor('20 events', () => recorder.records.length >= 20, 20_000);
poller.stop();
const beforeStop = existsSync(file);
adapter.stopWorker();
adapter.close();
report({
  beforeStop,
  rust: existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null,
  js: recorder.records,
  doorbellWakes: poller.stats().doorbellWakes,
});
