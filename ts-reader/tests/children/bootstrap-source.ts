/**
 * Child of process-lifecycle.test.ts: bootstraps one worker per config (argv[3], a JSON array) in the
 * directory argv[2], and reports where its events come from. Environment and working directory are the
 * child's own, so the test controls both.
 */
import process from 'node:process';
import { type BootstrapConfig, createFfiAdapter, FfiError } from '../../src/index.ts';
import { report } from '../support/child.ts';

process.chdir(process.argv[2] as string);
for (const config of JSON.parse(process.argv[3] as string) as BootstrapConfig[]) {
  const adapter = createFfiAdapter();
  try {
    adapter.bootstrapWorker({ log_level: 'info', log_stderr: false, ...config });
    const source = adapter.getFfiDispatchMetrics().source;
    const warning = adapter.pollWorkerLogs().find((r) => r.level === 'warn' && /synthetic/.test(r.message));
    report({ backend: source?.backend ?? null, database: source?.database ?? null, synthetic_warning: warning?.message ?? null });
    adapter.stopWorker();
  } catch (error) {
    report({ error: error instanceof FfiError ? error.code : String(error), message: (error as Error).message });
  } finally {
    adapter.close();
  }
}
