/**
 * What only a whole process shows, in child processes of the runtime running this file (Node, Bun, Deno):
 * where a default bootstrap takes its events from, what a fatal error does to a process nobody listens in,
 * which files a process that never called stop() leaves behind, a region cut short under a running worker,
 * and Deno's doorbell without --allow-write.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectRuntime } from '../src/runtime.ts';
import { type ChildResult, runChild } from './support/child.ts';
import { tempDir } from './support/store.ts';

function describeChild(r: ChildResult): string {
  return `exit ${r.code} (signal ${r.signal})\nstdout: ${r.stdout}\nstderr: ${r.stderr.slice(-2000)}`;
}

describe('the step store is the default source', () => {
  it('without TASKER_DATABASE_URL: ./tasker.db in the working directory; the synthetic source only when asked, with a warning', async () => {
    const dir = tempDir('source');
    try {
      const configs = [{}, { namespace: 'payments', log_level: 'warn' }, { source: { kind: 'synthetic', count: 0 } }, { namespcae: 'payments' }];
      const r = await runChild('bootstrap-source.ts', [dir.path, JSON.stringify(configs)], { env: { TASKER_DATABASE_URL: undefined } });
      assert.equal(r.code, 0, describeChild(r));
      const [empty, seed, synthetic, typo] = r.lines;
      assert.deepEqual(empty, { backend: 'sqlite', database: 'tasker.db', synthetic_warning: null }, describeChild(r));
      assert.deepEqual(seed, { backend: 'sqlite', database: 'tasker.db', synthetic_warning: null }, 'a seed-style config reads the store');
      assert.ok(existsSync(join(dir.path, 'tasker.db')), 'the store was created in the working directory');
      assert.equal(synthetic?.backend, null);
      assert.match(String(synthetic?.synthetic_warning), /step events are synthetic/);
      assert.equal(typo?.error, 'BOOTSTRAP_FAILED');
      assert.match(String(typo?.message), /unknown field `namespcae`; did you mean `namespace`\?/);
    } finally {
      dir.remove();
    }
  });

  it('with TASKER_DATABASE_URL: that store; a top-level database_url wins over it and over source.database_url', async () => {
    const dir = tempDir('source-env');
    try {
      const at = (name: string) => `sqlite:${join(dir.path, name)}`;
      const configs = [
        {},
        { database_url: at('top.db'), source: { kind: 'store', database_url: at('inner.db') } },
        { source: { kind: 'store', database_url: at('inner.db') } },
      ];
      const r = await runChild('bootstrap-source.ts', [dir.path, JSON.stringify(configs)], { env: { TASKER_DATABASE_URL: at('env.db') } });
      assert.equal(r.code, 0, describeChild(r));
      assert.deepEqual(
        r.lines.map((l) => l.database),
        [at('env.db'), at('top.db'), at('inner.db')],
        describeChild(r),
      );
      assert.ok(!existsSync(join(dir.path, 'tasker.db')), './tasker.db is only the last resort');
    } finally {
      dir.remove();
    }
  });
});

describe('a fatal error is never silent', () => {
  const fatal = async (mode: string) => {
    const r = await runChild('fatal.ts', [mode]);
    const files = r.lines.find((l) => typeof l.region === 'string') as { region: string; sock: string } | undefined;
    assert.ok(files, describeChild(r));
    assert.ok(!existsSync(files.region) && !existsSync(files.sock), 'the worker was stopped: its files are gone');
    const logged = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; target: string; message: string; fields: { code?: string } })
      .filter((l) => l.target === '@tasker-systems/worker' && l.level === 'error');
    assert.equal(logged.length, 1, `logged once through the logger\n${describeChild(r)}`);
    assert.ok(
      r.lines.some((l) => l.event === 'worker.stopped' && l.running === false),
      describeChild(r),
    );
    return { r, logged: logged[0] as { message: string; fields: { code?: string } } };
  };

  it('nobody listens: logged, stopped, and the process exits with code 1', async () => {
    const { r, logged } = await fatal('unheard');
    assert.equal(r.code, 1, describeChild(r));
    assert.ok(
      r.lines.some((l) => l.event === 'worker.stopped' && l.exitCode === 1),
      'process.exitCode was set (not an unhandled rejection or a crash)',
    );
    assert.doesNotMatch(r.stderr, /unhandled/i, 'an unread `done` never becomes an unhandled rejection');
    assert.equal(logged.fields.code, 'MISALIGNED');
    assert.match(logged.message, /fatal: the worker stops: ring is corrupt/);
  });

  it('a worker.error listener gets the typed error; the exit code stays 0', async () => {
    const { r } = await fatal('listener');
    assert.equal(r.code, 0, describeChild(r));
    assert.ok(r.lines.some((l) => l.event === 'worker.stopped' && l.exitCode === 0));
    assert.deepEqual(
      r.lines.find((l) => l.event === 'worker.error'),
      { event: 'worker.error', name: 'RingReadError', code: 'MISALIGNED' },
    );
  });

  it('worker.done rejects with the error; the exit code stays 0', async () => {
    const { r } = await fatal('done');
    assert.equal(r.code, 0, describeChild(r));
    assert.deepEqual(
      r.lines.find((l) => 'done' in l),
      { done: 'rejected', code: 'MISALIGNED' },
    );
  });

  it('a worker core that stopped on its own (status.error) is fatal too: WorkerFaultError', async () => {
    const { r, logged } = await fatal('fault');
    assert.equal(r.code, 0, describeChild(r));
    assert.equal(logged.fields.code, 'WORKER_FAULT');
    assert.match(logged.message, /the completions ring is corrupt/);
    assert.deepEqual(
      r.lines.find((l) => l.event === 'worker.error'),
      { event: 'worker.error', name: 'WorkerFaultError', code: 'WORKER_FAULT' },
    );
  });
});

describe('a region file cut short under a running worker', () => {
  it("ends the worker with WorkerFaultError (the worker core's size check; the poller leaves it to it)", async () => {
    const r = await runChild('shrunk-region.ts', []);
    assert.equal(r.code, 0, describeChild(r));
    const out = r.lines[0] as { ended: string; name: string; code: string; message: string; ms: number };
    assert.equal(out.ended, 'failed', describeChild(r));
    assert.equal(out.name, 'WorkerFaultError', describeChild(r));
    assert.equal(out.code, 'WORKER_FAULT');
    assert.match(out.message, /the region file changed size/);
  });
});

describe('no orphaned regions: a process that exits without stop() removes its region and doorbell files', () => {
  for (const [mode, code] of [
    ['clean', 0],
    ['exit', 3],
    ['uncaught', 1],
    ['rejection', 1],
  ] as const) {
    it(`${mode}: exit code ${code}, nothing left`, async () => {
      const r = await runChild('exit-region.ts', [mode]);
      assert.equal(r.code, code, describeChild(r));
      const files = r.lines[0] as { region: string; sock: string; exists: boolean };
      assert.equal(files.exists, true, 'both files existed while the worker ran');
      assert.equal(existsSync(files.region), false, `${files.region} was removed`);
      assert.equal(existsSync(files.sock), false, `${files.sock} was removed`);
    });
  }
});

describe('Deno without --allow-write', () => {
  const skip = detectRuntime() === 'deno' ? false : 'Deno only (its permissions)';
  it('the doorbell gives one typed, logged warning and polling goes on at the tick', { skip }, async () => {
    const r = await runChild('doorbell-denied.ts', [], { denoFlags: ['--allow-ffi', '--allow-read', '--allow-env', '--allow-run'], killAfterMs: 30_000 });
    assert.equal(r.code, 0, describeChild(r));
    const out = r.lines[0] as {
      handled: number;
      errors: Array<{ name: string; code: string }>;
      warnings: Array<{ target: string; code: string; message: string }>;
    };
    assert.equal(out.handled, 3, 'events still arrive (the tick polls)');
    assert.deepEqual(out.errors, [{ name: 'DoorbellError', code: 'DOORBELL_NOT_PERMITTED' }], 'reported once, typed');
    assert.equal(out.warnings.length, 1, 'logged once');
    assert.equal(out.warnings[0]?.code, 'DOORBELL_NOT_PERMITTED');
    assert.match(out.warnings[0]?.message ?? '', /-A|--allow-write/, 'says what Deno needs');
    assert.match(out.warnings[0]?.message ?? '', /falls back to the 10 ms tick/);
  });
});
