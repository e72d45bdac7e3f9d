/**
 * Child of bench/end-to-end.ts's idle-CPU measurement (issue 21): a `TaskerWorker` on the empty SQLite store
 * argv[2], with one handler registered and nothing to do. Prints `ready` once started; stops on SIGTERM.
 */
import process from 'node:process';
import { TaskerWorker } from '../src/index.ts';

const databaseUrl = process.argv[2] as string;
const worker = new TaskerWorker({ bootstrap: { namespace: 'bench', log_level: 'warn', log_stderr: false, database_url: databaseUrl } });
worker.register('Bench.Noop', () => ({}));
await worker.start();
console.log('ready');
