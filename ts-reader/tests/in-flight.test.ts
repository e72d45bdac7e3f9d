/**
 * The adapter's in-flight ids (src/ffi/in-flight.ts) against a Map, the structure it replaced: random
 * operations from a seeded generator over ids that collide on purpose (shared tails), grow the table past
 * its first capacity and wrap probes around its end; every answer and the size compared after each step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InFlightIds } from '../src/ffi/in-flight.ts';

/** mulberry32: a small seeded generator, so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(next: () => number): string {
  const hex = () => Math.floor(next() * 16).toString(16);
  let s = '';
  for (let i = 0; i < 36; i++) s += i === 8 || i === 13 || i === 18 || i === 23 ? '-' : hex();
  return s;
}

/** The reference: a Map, with expire and range as the adapter computed them over its Map. */
class Model {
  readonly map = new Map<string, number>();
  expire(before: number): void {
    for (const [id, at] of this.map) if (at <= before) this.map.delete(id);
  }
  range(): { oldestId: string; oldestReadAt: number; newestReadAt: number } | null {
    let oldest: [string, number] | null = null;
    let newestReadAt = 0;
    for (const entry of this.map) {
      oldest ??= entry;
      newestReadAt = entry[1];
    }
    return oldest === null ? null : { oldestId: oldest[0], oldestReadAt: oldest[1], newestReadAt };
  }
}

describe('in-flight ids', () => {
  for (const seed of [1, 2, 3, 42, 2026]) {
    it(`answers as a Map does over 20 000 random operations (seed ${seed})`, () => {
      const next = rng(seed);
      // 300 canonical ids, 100 sharing one tail (every one collides), some short and odd strings.
      const pool: string[] = [];
      for (let i = 0; i < 300; i++) pool.push(uuid(next));
      for (let i = 0; i < 100; i++) pool.push(`${uuid(next).slice(0, 28)}deadbeef`);
      pool.push('', 'x', 'not-an-id', 'DEADBEEF', `${pool[0]}`.toUpperCase());
      const table = new InFlightIds();
      const model = new Model();
      let clock = 0;
      for (let step = 0; step < 20_000; step++) {
        const id = pool[Math.floor(next() * pool.length)] as string;
        const op = next();
        if (op < 0.45) {
          clock += Math.floor(next() * 3);
          table.set(id, clock);
          model.map.set(id, clock);
        } else if (op < 0.7) {
          const expected = model.map.get(id);
          model.map.delete(id);
          assert.equal(table.take(id), expected, `take ${id} at step ${step}`);
        } else if (op < 0.8) {
          assert.equal(table.delete(id), model.map.delete(id), `delete ${id} at step ${step}`);
        } else if (op < 0.98) {
          assert.equal(table.get(id), model.map.get(id), `get ${id} at step ${step}`);
        } else if (op < 0.99) {
          const before = clock - Math.floor(next() * 50);
          table.expire(before);
          model.expire(before);
        } else {
          assert.deepEqual(table.range(), model.range(), `range at step ${step}`);
        }
        assert.equal(table.size, model.map.size, `size at step ${step}`);
      }
      for (const id of pool) assert.equal(table.get(id), model.map.get(id));
    });
  }

  it('grows past its first capacity and empties again', () => {
    const next = rng(7);
    const ids = Array.from({ length: 5000 }, () => uuid(next));
    const table = new InFlightIds();
    for (const [i, id] of ids.entries()) table.set(id, i);
    assert.equal(table.size, 5000);
    for (const [i, id] of ids.entries()) assert.equal(table.get(id), i);
    assert.deepEqual(table.range(), { oldestId: ids[0], oldestReadAt: 0, newestReadAt: 4999 });
    table.expire(2499);
    assert.equal(table.size, 2500);
    assert.equal(table.get(ids[2499] as string), undefined);
    assert.equal(table.get(ids[2500] as string), 2500);
    for (const id of ids) table.delete(id);
    assert.equal(table.size, 0);
    assert.equal(table.range(), null);
  });

  it('keeps an id first in the order when it is set again, as a Map does', () => {
    const table = new InFlightIds();
    table.set('a', 1);
    table.set('b', 2);
    table.set('a', 3);
    assert.deepEqual(table.range(), { oldestId: 'a', oldestReadAt: 3, newestReadAt: 2 });
  });

  it('answers "not in flight" for a key that is not a string, and refuses to record one', () => {
    const table = new InFlightIds();
    assert.equal(table.get(undefined as unknown as string), undefined);
    assert.equal(table.take(42 as unknown as string), undefined);
    assert.equal(table.delete(null as unknown as string), false);
    assert.throws(() => table.set(undefined as unknown as string, 1), TypeError);
  });
});
