/**
 * The README's quick start runs as written against the step store, on the runtime running this file: the
 * block is copied out of README.md (only its import specifier is pointed at this package's sources) into a
 * directory of this package (as a user's file sits in their project, under its package.json), run in a child
 * process with TASKER_DATABASE_URL naming a fresh store of 25 linear tasks, and stopped with SIGTERM once the
 * store says every step is complete. On Deno it runs with exactly the permissions the README lists.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from './support/adapter.ts';
import { runChild } from './support/child.ts';
import { enqueue, storeSteps, tempDir } from './support/store.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The first ```ts block after `heading`. */
function block(heading: string): string {
  const from = readme.indexOf(heading);
  assert.ok(from >= 0, `README has no ${heading}`);
  const match = /```ts\n([\s\S]*?)```/.exec(readme.slice(from));
  assert.ok(match?.[1], `no ts block after ${heading}`);
  return match[1];
}

/** The flags of the README's Deno command line for the quick start (`deno run FLAGS worker.ts`). */
function denoFlags(): string[] {
  const match = /`deno run ((?:-\S+ )+)worker\.ts`/.exec(readme);
  assert.ok(match?.[1], 'README names the Deno command as `deno run FLAGS worker.ts`');
  return match[1].trim().split(/\s+/);
}

describe('README', () => {
  it('the quick start runs unchanged against the step store and stops on SIGTERM', async () => {
    const dir = tempDir('readme');
    const project = mkdtempSync(fileURLToPath(new URL('./.tmp-readme-', import.meta.url)));
    try {
      const source = block('## Quick start');
      const index = fileURLToPath(new URL('../src/index.ts', import.meta.url));
      assert.match(source, /from '@tasker-systems\/worker'/);
      const script = join(project, 'worker.ts');
      writeFileSync(script, source.replace("'@tasker-systems/worker'", JSON.stringify(index)));
      const url = `sqlite:${join(dir.path, 'steps.db')}`;
      enqueue(url, 25);
      const r = await runChild(script, [], {
        env: { TASKER_DATABASE_URL: url },
        denoFlags: denoFlags(),
        whileRunning: async (child) => {
          await waitFor('every step complete', () => storeSteps(url).complete === 100, 60_000);
          child.kill('SIGTERM');
        },
      });
      assert.equal(r.code, 0, `exit ${r.code} (signal ${r.signal})\n${r.stdout}\n${r.stderr}`);
      const output = r.stdout + r.stderr;
      assert.match(output, /step events come from the step store/, output);
      assert.doesNotMatch(output, /synthetic/);
      const steps = storeSteps(url);
      assert.deepEqual({ complete: steps.complete, error: steps.error }, { complete: 100, error: 0 });
    } finally {
      dir.remove();
      rmSync(project, { recursive: true, force: true });
    }
  });
});
