/**
 * Child of claim-lost.test.ts, worker B: a TaskerWorker of the linear template on the store argv[2] that
 * runs until it has completed argv[3] steps (or 45 s have passed), then stops and reports the event ids it
 * handled by step name, when each handler ran (ms after the worker started) and the worker's stats, so a
 * failing parent can tell a slow claim from a stall.
 */
import process from 'node:process';
import { TaskerWorker } from '../../src/index.ts';
import { report } from '../support/child.ts';

const [databaseUrl, want] = [process.argv[2] as string, Number(process.argv[3])];
const worker = new TaskerWorker({ handleSignals: false, bootstrap: { namespace: 'default', log_level: 'warn', database_url: databaseUrl } });
const handled: Record<string, string> = {};
const at: Record<string, number> = {};
let started = Date.now();
worker.register('LinearWorkflow.StepHandlers.LinearStep1Handler', ({ event, step, task }) => {
  handled[step.name] = event.step_uuid;
  at[step.name] = Date.now() - started;
  return { value: (task.context.even_number as number) ** 2 };
});
for (const [n, parent] of [
  [2, 'linear_step_1'],
  [3, 'linear_step_2'],
  [4, 'linear_step_3'],
] as const) {
  worker.register(`LinearWorkflow.StepHandlers.LinearStep${n}Handler`, ({ event, step, dependencyResults }) => {
    handled[step.name] = event.step_uuid;
    at[step.name] = Date.now() - started;
    return { value: (dependencyResults.results[parent] as { result: { value: number } }).result.value ** 2 };
  });
}
await worker.start();
started = Date.now();
const deadline = started + 45_000;
while (worker.stats().succeeded < want && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
await worker.stop();
report({ succeeded: worker.stats().succeeded, handled, at, stats: worker.stats(), elapsed_ms: Date.now() - started });
