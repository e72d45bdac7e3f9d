/**
 * Child of claim-lost.test.ts, worker A. Bootstraps a store worker on the SQLite store argv[2] with claims
 * that last 1 s (`completion_timeout_ms` 1000, `visibility_margin_ms` 0) and reports once the worker core has
 * claimed the task's first step and written it into the events ring, where it stays unread. The parent then
 * freezes this process (SIGSTOP) past the claim's deadline, lets a second worker take the step, resumes this
 * one and creates the file argv[3]: only then does a TaskerWorker read the event. Its handler's result is
 * taken (the event was just read) and sent; the store refuses it later, because the claim went to the other
 * worker. Reports the step.completion.refused events and the metrics that count them.
 */
import { existsSync } from 'node:fs';
import process from 'node:process';
import { type BootstrapConfig, type CompletionRefusal, createFfiAdapter, EventNames, TaskerWorker } from '../../src/index.ts';
import { report } from '../support/child.ts';

const [databaseUrl, goFile] = process.argv.slice(2) as [string, string];
const config: BootstrapConfig = {
  namespace: 'default',
  log_level: 'warn',
  completion_timeout_ms: 1000,
  database_url: databaseUrl,
  source: { kind: 'store', visibility_margin_ms: 0 },
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const adapter = createFfiAdapter();
adapter.bootstrapWorker({ log_stderr: false, ...config });
await until('the first step claimed and in the ring', () => {
  const m = adapter.getFfiDispatchMetrics();
  return (m.source?.claimed ?? 0) >= 1 && m.pending_count >= 1;
});
report({ claimed: adapter.getFfiDispatchMetrics().source?.claimed });

await until('the go file', () => existsSync(goFile), 60_000);
const worker = new TaskerWorker({ adapter, bootstrap: config, handleSignals: false, logger: (r) => process.stderr.write(`${JSON.stringify(r)}\n`) });
const handled: { event_id: string; step_uuid: string }[] = [];
const sent: string[] = [];
const refusals: CompletionRefusal[] = [];
worker.register('LinearWorkflow.StepHandlers.LinearStep1Handler', ({ event, task }) => {
  handled.push({ event_id: event.event_id, step_uuid: event.step_uuid });
  return { value: (task.context.even_number as number) ** 2 };
});
worker.emitter.subscribe(EventNames.STEP_COMPLETION_SENT, (completion: { event_id: string }) => sent.push(completion.event_id));
worker.emitter.subscribe(EventNames.STEP_COMPLETION_REFUSED, (refusal: CompletionRefusal) => refusals.push(refusal));
await worker.start();
await until('a claim_lost refusal', () => refusals.some((r) => r.kind === 'claim_lost'));
const metrics = adapter.getFfiDispatchMetrics();
report({
  handled,
  sent,
  refusals,
  source_refused: metrics.source?.refused,
  refused_completions: metrics.refused_completions,
  stats_refused: worker.stats().refused,
});
await worker.stop();
