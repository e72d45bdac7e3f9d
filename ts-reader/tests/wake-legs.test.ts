/**
 * The idle-wake diagnostic (issue 21, bench/wake-legs.ts): the join of the pump's and the JS side's stamps
 * by event id, the legs table, the JS recorder's wrappers, and the whole chain against the real library
 * (`TASKER_WAKE_LEGS` read at bootstrap, the poller's `wakeTrace` hook).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type JsWakeLeg, JsWakeRecorder, joinLegs, legsTable, type RustWakeLeg, type RustWakeLegsFile, WAKE_LEGS } from '../bench/wake-legs.ts';
import type { FfiStepEvent } from '../src/protocol.ts';
import { runChild } from './support/child.ts';

/** Rust and JS records of an event woken by its own doorbell, every leg `step` us after the last. */
function woken(id: string, at: number, step = 1): { rust: RustWakeLeg; js: JsWakeLeg } {
  return {
    // The write returns after the callback ran (the woken thread took the writer's CPU): an aside, not a link.
    rust: { event_id: id, claimed_us: at + step, published_us: at + 2 * step, ring_begins_us: at + 3 * step, doorbell_us: at + 5 * step },
    js: {
      event_id: id,
      due_us: at,
      doorbell_cb_us: at + 4 * step,
      poll_us: at + 5 * step,
      decoded_us: at + 6 * step,
      parsed_us: at + 7 * step,
      handler_us: at + 8 * step,
    },
  };
}

describe('wake legs: join and table', () => {
  it('joins by event id, whatever the order, and keeps only events woken by their own doorbell', () => {
    const a = woken('a', 1000);
    const b = woken('b', 2000);
    // c: the pump rang, but the reader's latest callback came before c was published (an earlier event's).
    const c = woken('c', 3000);
    c.js.doorbell_cb_us = 2500;
    // d: the reader was awake, so the pump did not ring.
    const d = woken('d', 4000);
    d.rust.doorbell_us = null;
    // e: no doorbell callback at all yet on the JS side.
    const e = woken('e', 5000);
    e.js.doorbell_cb_us = null;
    const orphan = woken('orphan', 6000).js;
    const undelivered = woken('undelivered', 7000).rust;
    const result = joinLegs([undelivered, e.rust, d.rust, c.rust, b.rust, a.rust], [a.js, b.js, c.js, d.js, e.js, orphan]);
    assert.deepEqual(
      result.joined.map((j) => j.event_id),
      ['a', 'b'],
    );
    assert.equal(result.withoutDoorbell, 3);
    assert.equal(result.jsWithoutRust, 1);
    assert.equal(result.rustWithoutJs, 1);
    const joinedB = result.joined[1];
    assert.deepEqual(joinedB, {
      event_id: 'b',
      due: 2000,
      claimed: 2001,
      published: 2002,
      ring: 2003,
      rung: 2005,
      callback: 2004,
      poll: 2005,
      decoded: 2006,
      parsed: 2007,
      handler: 2008,
    });
  });

  it('each leg of the chain is the difference of consecutive points; then the whole wake and the write aside', () => {
    const { joined } = joinLegs([woken('x', 0, 3).rust], [woken('x', 0, 3).js]);
    const rows = legsTable(joined);
    assert.equal(rows.length, WAKE_LEGS.length);
    const chain = WAKE_LEGS.filter((l) => l.chain);
    assert.equal(chain.length, 8);
    for (const row of rows.slice(0, chain.length)) assert.deepEqual([row.n, row.p50_us, row.p99_us], [1, 3, 3], row.leg);
    const rest = rows.slice(chain.length).map((r) => [r.leg, r.p50_us, r.p99_us]);
    assert.deepEqual(rest, [
      ['due -> handler start (whole wake)', 24, 24],
      ['(aside) doorbell write, begun -> returned', 6, 6],
    ]);
    // The chain: each leg starts where the previous one ended, from due to handler start.
    assert.equal(chain[0]?.from, 'due');
    assert.equal(chain.at(-1)?.to, 'handler');
    for (let i = 1; i < chain.length; i++) assert.equal(chain[i]?.from, chain[i - 1]?.to);
  });

  it('percentiles are nearest rank over the joined events, per leg', () => {
    const rust: RustWakeLeg[] = [];
    const js: JsWakeLeg[] = [];
    for (let i = 1; i <= 100; i++) {
      const ev = woken(`e${i}`, i * 1000);
      // due -> claimed takes i us: p50 is the 50th value, p99 the 99th.
      ev.rust.claimed_us = i * 1000 + i;
      ev.rust.published_us = (ev.rust.claimed_us as number) + 1;
      ev.rust.ring_begins_us = (ev.rust.published_us as number) + 1;
      ev.rust.doorbell_us = (ev.rust.ring_begins_us as number) + 1;
      ev.js.doorbell_cb_us = (ev.rust.doorbell_us as number) + 1;
      rust.push(ev.rust);
      js.push(ev.js);
    }
    const first = legsTable(joinLegs(rust, js).joined)[0];
    assert.deepEqual([first?.n, first?.p50_us, first?.p99_us], [100, 50, 99]);
  });

  it('the recorder stamps the doorbell, the poll, the decoded frame, the parse and the handler of each event', () => {
    let clock = 0;
    const recorder = new JsWakeRecorder(() => ++clock);
    const event = { event_id: 'ev', enqueued_at_us: -5 } as unknown as FfiStepEvent;
    const reader = { next: () => ({ text: '{}' }) };
    const adapter = { pollStepEvents: (): FfiStepEvent | null => (reader.next() ? event : null) };
    recorder.instrument(adapter, reader);
    recorder.trace.doorbell(); // 1
    const polled = adapter.pollStepEvents(); // poll 2, decoded 3, parsed 4
    assert.equal(polled, event, 'the wrapped poll returns what the adapter returned');
    recorder.handler(event, 10);
    assert.deepEqual(recorder.records, [{ event_id: 'ev', due_us: -5, doorbell_cb_us: 1, poll_us: 2, decoded_us: 3, parsed_us: 4, handler_us: 10 }]);
  });
});

describe('wake legs: the real worker', () => {
  it('TASKER_WAKE_LEGS makes the pump write its stamps at stop, and they join with the poller-side ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasker-wake-legs-test-'));
    try {
      const child = await runChild('wake-legs.ts', [], { env: { TASKER_WAKE_LEGS: dir } });
      assert.equal(child.code, 0, child.stderr);
      const out = child.lines.at(-1) as { beforeStop: boolean; rust: RustWakeLegsFile | null; js: JsWakeLeg[]; doorbellWakes: number };
      assert.equal(out.beforeStop, false, 'the pump writes its stamps when it stops, not before');
      assert.ok(out.rust, `the pump wrote its file in ${dir}`);
      assert.equal(out.rust.legs.length, 20, 'one record per claimed event');
      assert.equal(out.rust.dropped, 0);
      assert.equal(out.js.length, 20);
      const result = joinLegs(out.rust.legs, out.js);
      assert.equal(result.jsWithoutRust, 0);
      assert.equal(result.rustWithoutJs, 0);
      assert.ok(result.joined.length >= 10, `most events woke through their doorbell (${result.joined.length} of 20, ${out.doorbellWakes} wakes)`);
      for (const j of result.joined) {
        // Points on one side's clock are in order; the doorbell callback follows the Rust write.
        assert.ok(j.claimed <= j.published && j.published <= j.ring && j.ring <= j.rung, `Rust points in order: ${JSON.stringify(j)}`);
        assert.ok(j.callback <= j.poll && j.poll <= j.decoded && j.decoded <= j.parsed && j.parsed <= j.handler, `JS points in order: ${JSON.stringify(j)}`);
        // Cause and effect across the two clocks: the callback comes after the write began.
        assert.ok(j.ring <= j.callback, `the callback follows the write's start: ${JSON.stringify(j)}`);
      }
      // Only the child's one ring worker recorded, in the directory it was given.
      assert.deepEqual(readdirSync(dir), [`wake-legs-${out.rust.worker_id}.json`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
