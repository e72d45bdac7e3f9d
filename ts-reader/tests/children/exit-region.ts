/**
 * Child of process-lifecycle.test.ts: starts a ring worker, reports its region and doorbell files, and
 * ends without stop() in the way argv[2] says: `clean` (nothing left to do), `exit` (process.exit(3) with a
 * TaskerWorker polling), `uncaught` (an uncaught exception), `rejection` (an unhandled rejection).
 */
import { existsSync } from 'node:fs';
import process from 'node:process';
import { createFfiAdapter, TaskerWorker } from '../../src/index.ts';
import { report } from '../support/child.ts';

const mode = process.argv[2];
const bootstrap = { log_level: 'error', log_stderr: false, source: { kind: 'synthetic', count: 0 } } as const;
let region: string | null | undefined;
let sock: string | null | undefined;
if (mode === 'exit') {
  const worker = new TaskerWorker({ bootstrap, handleSignals: false });
  ({ region_path: region, doorbell_path: sock } = await worker.start());
} else {
  ({ region_path: region, doorbell_path: sock } = createFfiAdapter().bootstrapWorker(bootstrap));
}
report({ region, sock, exists: existsSync(region as string) && existsSync(sock as string) });
if (mode === 'exit') process.exit(3);
if (mode === 'uncaught') {
  setTimeout(() => {
    throw new Error('a deliberate uncaught exception');
  }, 0);
}
if (mode === 'rejection') void Promise.reject(new Error('a deliberate unhandled rejection'));
