/**
 * A completion the step store refuses later, in Rust, because the claim was lost: worker A's claim on a step
 * expires while A is frozen (SIGSTOP: a GC pause, a suspended VM), worker B takes and completes the step,
 * then A resumes, reads the event and sends its result, which A's adapter takes (the event was just read) and
 * the store refuses (`claim_lost`). The refusal must reach A's caller as `step.completion.refused`, with
 * its reason, and be counted in A's metrics.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CompletionRefusal } from '../src/protocol.ts';
import { runChild } from './support/child.ts';
import { enqueue, storeSteps, tempDir } from './support/store.ts';

interface WorkerAReport {
  handled: { event_id: string; step_uuid: string }[];
  sent: string[];
  refusals: CompletionRefusal[];
  source_refused: number;
  refused_completions: number;
  stats_refused: number;
}

describe('a claim lost to another worker', () => {
  it('the store refuses the late result: step.completion.refused (claim_lost) reaches the caller and the metrics count it', async () => {
    const dir = tempDir('claim-lost');
    try {
      const url = `sqlite:${join(dir.path, 'steps.db')}`;
      const go = join(dir.path, 'go');
      enqueue(url, 1); // one linear task: its first step is ready, the other three wait for it
      let claimed: () => void = () => {};
      const claimSeen = new Promise<void>((resolve) => {
        claimed = resolve;
      });
      let workerB: Awaited<ReturnType<typeof runChild>> | null = null;
      const a = await runChild('claim-lost.ts', [url, go], {
        onLine: (line) => {
          if ('claimed' in line) claimed();
        },
        whileRunning: async (child) => {
          await claimSeen;
          child.kill('SIGSTOP');
          try {
            // B can claim the step only once A's claim (1 s, renewed while A ran) has expired.
            workerB = await runChild('store-worker.ts', [url, '4'], { killAfterMs: 90_000 });
          } finally {
            child.kill('SIGCONT');
          }
          writeFileSync(go, '');
        },
      });
      const b = workerB as Awaited<ReturnType<typeof runChild>> | null;
      assert.equal(b?.code, 0, `worker B: ${b?.stderr}`);
      const bReport = b?.lines.at(-1) as { succeeded: number; handled: Record<string, string> };
      assert.equal(
        bReport.succeeded,
        4,
        `B took the expired claim and completed the whole task: ${JSON.stringify({ report: bReport, store: storeSteps(url), stderr: b?.stderr })}`,
      );
      assert.equal(a.code, 0, `worker A: ${a.stderr}`);
      const report = a.lines.at(-1) as unknown as WorkerAReport;
      assert.equal(report.handled.length, 1, 'A ran its handler once, for the event it read after resuming');
      const [{ event_id, step_uuid }] = report.handled as [{ event_id: string; step_uuid: string }];
      assert.equal(step_uuid, bReport.handled.linear_step_1, 'the same step B completed');
      assert.deepEqual(report.sent, [event_id], 'the adapter took the result: the event had just been read');
      assert.deepEqual(
        report.refusals.map((r) => [r.event_id, r.kind]),
        [[event_id, 'claim_lost']],
        'refused later, by the store, and only that',
      );
      assert.match((report.refusals[0] as CompletionRefusal).message, /claim expired and the step moved on to another worker/);
      assert.equal(report.source_refused, 1, "the store source's metrics count it");
      assert.equal(report.refused_completions, 0, 'the worker core itself took it (refused_completions counts its own refusals)');
      assert.equal(report.stats_refused, 1, "the TaskerWorker's stats count it");
      const steps = storeSteps(url);
      assert.equal(steps.complete, 4, `B's results stand: ${JSON.stringify(steps)}`);
    } finally {
      dir.remove();
    }
  });
});
