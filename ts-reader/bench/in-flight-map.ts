/**
 * The adapter's in-flight Map alone (issue 21): `Map.set` + `delete` per event, 200 in flight, keyed by
 * event ids as the adapter gets them (fresh strings out of JSON.parse: the set pays their first hash) and by
 * the same ids again (hash cached) and by numbers; then the value as a `Date.now()` heap number vs a small
 * integer, over keys already hashed. Median of 15 rounds of 100 000, per set + delete.
 *
 *   node --import tsx bench/in-flight-map.ts
 *   node_modules/.bin/bun bench/in-flight-map.ts
 *   node_modules/.bin/deno run -A bench/in-flight-map.ts
 */
import { randomUUID } from 'node:crypto';

const N = 100_000;
const IN_FLIGHT = 200;
const ROUNDS = 15;
const uuids = Array.from({ length: N }, () => randomUUID());
const parsedIds = () => uuids.map((u) => (JSON.parse(`{"event_id":"${u}"}`) as { event_id: string }).event_id);
const hashedIds = parsedIds();
new Map(hashedIds.map((id) => [id, 0])); // hashes them once

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

function setDelete(keys: (string | number)[], value: () => number): number {
  const map = new Map<string | number, number>();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    map.set(keys[i] as string | number, value());
    if (i >= IN_FLIGHT) map.delete(keys[i - IN_FLIGHT] as string | number);
  }
  return ((performance.now() - t0) * 1e6) / N;
}

let clock = Date.now();
let small = 1234;
const cases: [string, () => number][] = [
  ['fresh ids from JSON.parse (first hash)', () => setDelete(parsedIds(), () => small)],
  ['the same ids again (hash cached)', () => setDelete(hashedIds, () => small)],
  [
    'numbers',
    () =>
      setDelete(
        uuids.map((_, i) => i),
        () => small,
      ),
  ],
  ['cached ids, value Date.now() (a heap number)', () => setDelete(hashedIds, () => clock)],
  ['cached ids, value a small integer', () => setDelete(hashedIds, () => small)],
];
const times = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  clock = Date.now();
  small = clock % 100_000;
  for (const [name, run] of round % 2 === 0 ? cases : [...cases].reverse()) times.get(name)?.push(run());
}
for (const [name, ns] of times) console.log(`${name.padEnd(46)} ${median(ns).toFixed(0).padStart(5)} ns per set + delete`);
