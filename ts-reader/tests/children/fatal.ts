/**
 * Child of process-lifecycle.test.ts: a TaskerWorker whose ring is corrupted under it (through the region
 * file) once it runs. argv[2] says who listens:
 * - `unheard`: nobody (no worker.error listener, `done` never read): the process must end with exit code 1;
 * - `listener`: a worker.error listener; `done`: `worker.done` is awaited; both must end with exit code 0;
 * - `fault`: the completions ring is corrupted instead, so the worker core stops on its own (WorkerFault).
 * The worker's log records go to stderr as JSON lines.
 */
import process from 'node:process';
import { EventNames, type FfiError, TaskerWorker } from '../../src/index.ts';
import { report } from '../support/child.ts';
import { misalignProducerPosition } from '../support/region-file.ts';

const mode = process.argv[2];
const worker = new TaskerWorker({
  bootstrap: { log_level: 'warn', source: { kind: 'synthetic', count: 0 } },
  handleSignals: false,
  logger: (record) => process.stderr.write(`${JSON.stringify(record)}\n`),
});
if (mode === 'listener' || mode === 'fault') {
  worker.emitter.subscribe(EventNames.WORKER_ERROR, (error: FfiError) => report({ event: 'worker.error', name: error.name, code: error.code }));
}
worker.emitter.subscribe(EventNames.WORKER_STOPPED, () => report({ event: 'worker.stopped', running: worker.isRunning, exitCode: process.exitCode ?? 0 }));
if (mode === 'done') {
  worker.done.then(
    () => report({ done: 'resolved' }),
    (error: FfiError) => report({ done: 'rejected', code: error.code }),
  );
}
const boot = await worker.start();
report({ region: boot.region_path, sock: boot.doorbell_path });
misalignProducerPosition(boot.region_path as string, mode === 'fault' ? 1 : 0);
