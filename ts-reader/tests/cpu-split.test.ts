/**
 * The burst's CPU split (issue 21, bench/cpu-split.ts): self time grouped by what a function does, per event,
 * from a synthetic profile; and the live profiler on this runtime (V8's on Node and Deno; Bun skipped with
 * its reason).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CpuProfile, notWork, PROFILER, splitProfile, startCpuProfile } from '../bench/cpu-split.ts';

function node(id: number, functionName: string, url: string) {
  return { id, callFrame: { functionName, url } };
}

describe('cpu split: grouping', () => {
  const profile: CpuProfile = {
    nodes: [
      node(1, 'nextEvent', 'file:///x/src/ring/transport.ts'),
      node(2, 'pollStepEvents', 'file:///x/src/ffi/native-adapter.ts'),
      node(3, 'offerInPlace', 'file:///x/src/ring/writer.ts'),
      node(4, '(garbage collector)', ''),
      node(5, '(idle)', ''),
      node(6, 'somethingElse', 'file:///x/lib.ts'),
      node(7, 'post', 'ext:deno_node/inspector.js'),
      node(8, 'op_encoding_decode_utf8', ''),
    ],
    // A sample stands for the time until the next: sample i gets timeDeltas[i + 1]; the last gets none.
    samples: [1, 1, 2, 3, 4, 5, 6, 7, 8, 1],
    timeDeltas: [0, 100, 300, 50, 40, 30, 20, 10, 5, 7, 0],
  };

  it('sums self time by group, per event, largest first', () => {
    const split = splitProfile(profile, 10);
    const us = (group: string) => split.rows.find((r) => r.group === group)?.us_per_event;
    assert.equal(us('JSON.parse (nextEvent / the floor loop self)'), (100 + 300 + 0) / 10);
    assert.equal(us('in-flight ids (pollStepEvents self, InFlightIds set and take)'), 50 / 10);
    assert.equal(us('completion: bookkeeping, id check, encodeInto, publish'), 40 / 10);
    assert.equal(us('garbage collector'), 30 / 10);
    assert.equal(us('idle (waiting for events)'), 20 / 10);
    assert.equal(us("other (with the run's set-up and stop)"), 10 / 10);
    assert.equal(us(PROFILER), 5 / 10);
    assert.equal(us('TextDecoder.decode'), 7 / 10);
    assert.equal(split.total_ms, (100 + 300 + 50 + 40 + 30 + 20 + 10 + 5 + 7) / 1000);
    const order = split.rows.map((r) => r.us_per_event);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => b - a),
    );
  });

  it('counts waiting and the profiler apart from the work', () => {
    assert.equal(notWork('idle (waiting for events)'), true);
    assert.equal(notWork(PROFILER), true);
    assert.equal(notWork('garbage collector'), false);
  });

  it('gives NaN per event, not Infinity, for a run of no events', () => {
    assert.ok(splitProfile(profile, 0).rows.every((r) => Number.isNaN(r.us_per_event)));
  });
});

/** A function the live profile must find. */
function spinForSplit(ms: number): number {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
}

describe('cpu split: the live profiler', () => {
  it('samples this thread where V8 has a profiler, and says why not elsewhere', async () => {
    const profiler = startCpuProfile(200);
    if ('unavailable' in profiler) {
      assert.ok((globalThis as { Bun?: unknown }).Bun !== undefined, `unavailable outside Bun: ${profiler.unavailable}`);
      return;
    }
    spinForSplit(150);
    const profile = await profiler.stop();
    // The spin's samples (in this file: an engine may inline it into the test's function).
    const here = new Set(profile.nodes.filter((n) => n.callFrame.url.includes('cpu-split.test')).map((n) => n.id));
    const spinSamples = profile.samples.filter((s) => here.has(s)).length;
    assert.ok(spinSamples >= 20, `${spinSamples} samples in this file over a 150 ms spin at 200 us`);
    const split = splitProfile(profile, 1);
    assert.ok(split.total_ms >= 100, `profiled ${split.total_ms} ms`);
  });
});
