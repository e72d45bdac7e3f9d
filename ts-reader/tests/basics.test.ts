/** Runtime detection, the typed errors, the emitter's lifecycle, event names, a clean package root, and liveness. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';
import { describe, it } from 'node:test';
import * as pkg from '../src/index.ts';
import { closestKey } from '../src/options.ts';
import { liveness, processStartTime } from '../src/ring/role.ts';

const g = globalThis as { Bun?: unknown; Deno?: unknown };
const expected = g.Bun !== undefined ? 'bun' : g.Deno !== undefined ? 'deno' : 'node';

describe('runtime detection', () => {
  it(`identifies this runtime (${expected})`, () => {
    assert.equal(pkg.detectRuntime(), expected);
    assert.equal(pkg.isRuntimeSupported(pkg.detectRuntime()), true);
    assert.equal(pkg.assertSupportedRuntime(), expected);
  });

  it('supports Node, Bun and Deno, and throws on anything else', () => {
    for (const r of ['node', 'bun', 'deno'] as const) assert.equal(pkg.isRuntimeSupported(r), true);
    assert.equal(pkg.isRuntimeSupported('unknown'), false);
    assert.throws(() => pkg.assertSupportedRuntime('unknown'), /Unsupported runtime: unknown/);
  });

  it('the package root loads no runtime-specific FFI module', () => {
    assert.equal(typeof pkg.NodeFfiAdapter, 'function');
    assert.equal(typeof pkg.BunFfiAdapter, 'function');
    assert.equal(typeof pkg.DenoFfiAdapter, 'function');
    if (expected === 'node') {
      const require = createRequire(import.meta.url);
      const loaded = Object.keys(require.cache).filter((k) => k.includes(`${'/'}koffi${'/'}`));
      assert.deepEqual(loaded, [], 'koffi is loaded only when a NodeFfiAdapter is constructed');
    }
  });
});

describe('typed errors', () => {
  it('every error is an FfiError with a code, keeping the seed constructor shapes', () => {
    const cause = new Error('root');
    const base = new pkg.FfiError('m', cause);
    assert.equal(base.code, 'FFI_ERROR');
    assert.equal(base.cause, cause);
    const lib = new pkg.FfiLibraryError('not found', undefined, 'LIBRARY_NOT_FOUND', ['/a', '/b']);
    assert.ok(lib instanceof pkg.FfiError);
    assert.equal(lib.name, 'FfiLibraryError');
    assert.deepEqual(lib.triedPaths, ['/a', '/b']);
    const call = new pkg.FfiCallError('poll_step_events failed', cause);
    assert.equal(call.code, 'CALL_FAILED');
    assert.equal(call.name, 'FfiCallError');
    const read = new pkg.RingReadError('SEQUENCE_GAP', 64, 'x');
    assert.ok(read instanceof pkg.FfiError);
    assert.equal(read.position, 64);
    assert.equal(new pkg.RingAttachError('BAD_MAGIC', 'x').code, 'BAD_MAGIC');
    assert.equal(new pkg.RingPeerError('PEER_DEAD', 'x').code, 'PEER_DEAD');
    assert.equal(new pkg.EventDecodeError('x', 'excerpt').code, 'INVALID_EVENT');
    const sealed = new pkg.RingSealedError('x');
    assert.ok(sealed instanceof pkg.FfiError && sealed.code === 'RING_SEALED' && sealed.name === 'RingSealedError');
    assert.equal(pkg.isFatalError(sealed), false, "a sealed ring is the worker core's orderly end, not a fatal error");
    const unsupported = new pkg.UnsupportedByWorkerError('give_back', 'layout 1.0');
    assert.ok(unsupported instanceof pkg.FfiError && unsupported.code === 'UNSUPPORTED_BY_WORKER' && unsupported.feature === 'give_back');
    assert.equal(pkg.LAYOUT_MINOR, 1);
  });
});

describe('TaskerEventEmitter', () => {
  it('drops (and counts) events while inactive, delivers while active, forgets listeners on stop', () => {
    const emitter = new pkg.TaskerEventEmitter();
    const warnings: string[] = [];
    emitter.warn = (m) => warnings.push(m);
    const got: unknown[] = [];
    const handler = (x: unknown) => got.push(x);
    emitter.subscribe(pkg.EventNames.STEP_EXECUTION_RECEIVED, handler);
    assert.equal(emitter.isActive(), false);
    emitter.publish(pkg.EventNames.STEP_EXECUTION_RECEIVED, 1);
    assert.deepEqual(got, []);
    assert.equal(emitter.droppedWhileInactive, 1);
    assert.match(warnings[0] ?? '', /not active, dropping event: step.execution.received/);
    emitter.start();
    assert.equal(emitter.isActive(), true);
    emitter.publish(pkg.EventNames.STEP_EXECUTION_RECEIVED, 2);
    emitter.unsubscribe(pkg.EventNames.STEP_EXECUTION_RECEIVED, handler);
    emitter.publish(pkg.EventNames.STEP_EXECUTION_RECEIVED, 3);
    emitter.subscribe(pkg.EventNames.STEP_EXECUTION_RECEIVED, handler);
    emitter.stop();
    assert.equal(emitter.isActive(), false);
    assert.equal(emitter.listenerCount(pkg.EventNames.STEP_EXECUTION_RECEIVED), 0);
    assert.deepEqual(got, [2]);
  });

  it("EventNames carries the seed's names and tasker-core's", () => {
    const names = Object.values(pkg.EventNames);
    for (const n of [
      'step.execution.received',
      'step.completion.sent',
      'handler.registered',
      'handler.error',
      'poller.metrics',
      'poller.error',
      'worker.started',
      'worker.stopped',
      'step.execution.started',
      'step.execution.completed',
      'step.execution.failed',
      'step.execution.timeout',
      'worker.ready',
      'worker.shutdown.started',
      'worker.error',
      'poller.started',
      'poller.stopped',
      'poller.cycle.complete',
      'poller.starvation.detected',
      'metrics.updated',
      'metrics.error',
    ]) {
      assert.ok(names.includes(n as never), n);
    }
  });
});

describe('liveness (layout-spec.md section 13)', () => {
  const state = (pid: number): string => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
    } catch {
      return '';
    }
  };

  it('a running process is alive; a zombie and a reused pid are dead', { skip: process.platform !== 'linux' }, async () => {
    assert.equal(liveness(0, 0), 'absent');
    const ownStart = processStartTime('self') % 2 ** 32;
    assert.equal(liveness(process.pid, ownStart), 'alive');
    // This process's pid with another start time: an earlier process that had our pid, dead (the shortcut for
    // our own identity must not answer for it).
    assert.equal(liveness(process.pid, (ownStart + 1) % 2 ** 32), 'dead', 'our pid, an earlier start time: reused');
    // Outside pid_t's range (a peer line holds 32 unsigned bits): no process, as the Rust inspector says.
    for (const pid of [2 ** 31, 2 ** 31 + 12345, 2 ** 32 - 1]) assert.equal(liveness(pid, 0), 'dead', String(pid));
    // A short `sleep` runs in the background of a shell that then becomes `sleep 10`, which never reaps it: a
    // zombie once it exits. (A background `true` can exit before the `exec`, and the shell may reap it then:
    // that raced, 5 to 9 times in 10 depending on the runtime.)
    const child = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 10'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = await new Promise<number>((resolve, reject) => {
        child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
        child.once('error', reject);
      });
      const deadline = Date.now() + 10_000;
      while (state(zombie) !== 'Z' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(state(zombie), 'Z', 'the background child exited and was not reaped');
      assert.equal(liveness(zombie, 0), 'dead', 'a zombie answers kill(pid, 0) but is dead');
      const pid = child.pid ?? 0;
      const start = processStartTime(pid);
      assert.equal(liveness(pid, start % 2 ** 32), 'alive');
      assert.equal(liveness(pid, (start + 1) % 2 ** 32), 'dead', 'another start time: the pid was reused');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('typos are caught', () => {
  // These lines are checked by `tsc --noEmit` (npm run typecheck): were a line accepted, its
  // `@ts-expect-error` would be unused, which is an error of its own.
  it('a misspelt or mistyped bootstrap key fails tsc; the right ones pass', () => {
    // @ts-expect-error `namespcae` is not a key of BootstrapConfig
    const typo: pkg.BootstrapConfig = { namespcae: 'payments' };
    // @ts-expect-error log_level is one of the five levels
    const loud: pkg.BootstrapConfig = { log_level: 'loud' };
    // @ts-expect-error a synthetic source names no database
    const mixed: pkg.BootstrapConfig = { source: { kind: 'synthetic', database_url: 'sqlite:x.db' } };
    // @ts-expect-error `concurency` is not an option of TaskerWorker
    const options: pkg.TaskerWorkerOptions = { concurency: 5 };
    const right: pkg.BootstrapConfig = {
      namespace: 'payments',
      log_level: 'warn',
      database_url: 'sqlite:x.db',
      source: { kind: 'store', visibility_margin_ms: 1 },
    };
    assert.ok(typo && loud && mixed && options && right);
  });

  it('closestKey suggests what a typo most likely meant, and nothing for a stranger', () => {
    const keys = ['maxInFlight', 'maxEventsPerPoll', 'metricsInterval', 'handlerTimeoutMs', 'concurrency'];
    assert.equal(closestKey('maxInflight', keys), 'maxInFlight');
    assert.equal(closestKey('max_in_flight', keys), 'maxInFlight');
    assert.equal(closestKey('concurency', keys), 'concurrency');
    assert.equal(closestKey('handlerTimoutMs', keys), 'handlerTimeoutMs');
    assert.equal(closestKey('zebra', keys), null);
    assert.equal(closestKey('', keys), null);
  });
});
