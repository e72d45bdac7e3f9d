/**
 * Child of process-lifecycle.test.ts, run by Deno without --allow-write: the doorbell socket cannot be
 * opened, which must come out as one typed, logged warning (and polling goes on at the tick).
 */
import process from 'node:process';
import { EventNames, type FfiError, TaskerWorker, type WorkerLogRecord } from '../../src/index.ts';
import { report } from '../support/child.ts';

const warnings: WorkerLogRecord[] = [];
const errors: FfiError[] = [];
const worker = new TaskerWorker({
  bootstrap: { log_level: 'error', source: { kind: 'synthetic', count: 3, rate_per_sec: 20 } },
  handleSignals: false,
  logger: (record) => {
    if (record.level === 'warn') warnings.push(record);
  },
});
let handled = 0;
worker.register('LinearWorkflow.StepHandlers.LinearStep2Handler', () => {
  handled += 1;
  return {};
});
worker.emitter.subscribe(EventNames.POLLER_ERROR, (error: FfiError) => errors.push(error));
await worker.start();
// Three events arrive 50 ms apart: with the tick as the only wake-up they are still handled. (A warning
// that never comes keeps this loop waiting until the parent kills the child: the test then fails.)
while (handled < 3 || warnings.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
await worker.stop();
report({
  handled,
  errors: errors.map((e) => ({ name: e.name, code: e.code })),
  warnings: warnings.map((w) => ({ target: w.target, code: w.fields.code, message: w.message })),
  exitCode: process.exitCode ?? 0,
});
