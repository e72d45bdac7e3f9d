/**
 * A program written against the seed's (TAS-101) API only: construct the runtime's adapter, bootstrap with
 * the seed's config, run `new EventPoller(adapter, 10, 100, 1000)` and answer with `completeStepEvent`.
 * It runs unchanged on the ring transport (the default), fed by the step store: `database_url` when given
 * (the top level of the seed's config), else `TASKER_DATABASE_URL`, else `./tasker.db`. Fill a store and run
 * it (it stops after 10 000 steps):
 *   ../target/release/tasker-ring store enqueue --count 2500
 *   node --import tsx examples/seed-program.ts | bun examples/seed-program.ts | deno run -A examples/seed-program.ts
 */
import { BunFfiAdapter, DenoFfiAdapter, detectRuntime, EventPoller, type FfiAdapter, type FfiStepEvent, NodeFfiAdapter } from '../src/index.ts';

export async function runSeedProgram(events = 10_000, databaseUrl?: string): Promise<{ handled: number; transport: string | undefined }> {
  const runtime = detectRuntime();
  const adapter: FfiAdapter = runtime === 'bun' ? new BunFfiAdapter() : runtime === 'deno' ? new DenoFfiAdapter() : new NodeFfiAdapter();
  const result = adapter.bootstrapWorker({ namespace: 'linear_workflow_ts', log_level: 'warn', ...(databaseUrl ? { database_url: databaseUrl } : {}) });
  const poller = new EventPoller(adapter, 10, 100, 1000);
  let handled = 0;
  const done = new Promise<void>((resolve, reject) => {
    poller.onStepEvent((event: FfiStepEvent) => {
      const value = (event.task_sequence_step.task.context.even_number as number | undefined) ?? 2;
      adapter.completeStepEvent(
        event.event_id,
        JSON.stringify({ step_uuid: event.step_uuid, success: true, result: { value: value * value }, status: 'completed', metadata: {} }),
      );
      handled += 1;
      if (handled >= events) resolve();
    });
    poller.onError(reject);
  });
  poller.onMetrics((m) => console.log(`metrics: completed ${m.completed_count}, in flight ${m.in_flight_count}, pending ${m.pending_count}`));
  poller.start();
  try {
    await done;
  } finally {
    poller.stop();
    adapter.stopWorker();
    adapter.close();
  }
  return { handled, transport: result.transport };
}

const self = (globalThis as { process?: { argv?: string[] } }).process?.argv?.[1] ?? '';
if (import.meta.url.endsWith(self.split('/').pop() ?? '\0') && self.endsWith('seed-program.ts')) {
  const { handled, transport } = await runSeedProgram();
  console.log(`seed program: ${handled} step events handled on the ${transport} transport`);
}
