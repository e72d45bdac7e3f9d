/**
 * Child of process-lifecycle.test.ts: a TaskerWorker with nothing to do whose region file is cut short by a
 * page under its mapping (another process's doing). Reports how the worker ended and how long that took.
 * Its own poller leaves the size check to the worker core in this process (issue 21), so this is where the
 * check is seen to still end the worker.
 */
import { statSync, truncateSync } from 'node:fs';
import process from 'node:process';
import { TaskerWorker } from '../../src/index.ts';
import { report } from '../support/child.ts';

const worker = new TaskerWorker({
  bootstrap: { log_level: 'error', log_stderr: false, source: { kind: 'synthetic', count: 0 } },
  handleSignals: false,
});
const { region_path: region } = await worker.start();
const size = statSync(region as string).size;
const cut = Date.now();
truncateSync(region as string, size - 4096);
let outcome: Record<string, unknown>;
try {
  await Promise.race([worker.done, new Promise((_, reject) => setTimeout(() => reject(new Error('the worker did not notice in 10 s')), 10_000))]);
  outcome = { ended: 'cleanly' };
} catch (error) {
  const e = error as Error & { code?: string };
  outcome = { ended: 'failed', name: e.name, code: e.code ?? null, message: e.message };
}
report({ ...outcome, ms: Date.now() - cut });
process.exit(0);
