/**
 * Does the shape of the ring's event bytes make JSON.parse slower than the floor's? (issue 21: on Bun the batch
 * cost ~2x the floor, and the guess was JavaScriptCore parsing serde's key order more slowly.) The floor parses
 * the fixture's bytes, in the fixture's key order, the same bytes every time; the ring carries serde's order
 * (keys sorted at every level), distinct ids per event, packed one after another in one buffer. Each variant is
 * 1000 events decoded (TextDecoder) and parsed; 30 interleaved rounds; the median per event is printed.
 *
 *   node --import tsx bench/parse-shape.ts
 *   node_modules/.bin/bun bench/parse-shape.ts
 *   node_modules/.bin/deno run -A bench/parse-shape.ts
 */
import { readFileSync } from 'node:fs';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const fixture = JSON.parse(readFileSync(new URL('../../fixtures/step-event.json', import.meta.url), 'utf8')) as Json;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const N = 1000;
const ROUNDS = 30;

/** serde_json's order: every object's keys sorted. */
function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: { [key: string]: Json } = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k] as Json);
    return out;
  }
  return v;
}

const uuid = (i: number) => `0190a1b2-c3d4-7e5f-8a9b-${i.toString(16).padStart(12, '0')}`;
/** The event with ids of its own (as each ring event has). */
function distinct(event: Json, i: number): Uint8Array {
  const text = JSON.stringify(event)
    .replace(/"event_id":"[^"]+"/, `"event_id":"${uuid(i)}"`)
    .replace(/"step_uuid":"[^"]+"/, `"step_uuid":"${uuid(i + 1e6)}"`)
    .replace(/"task_uuid":"[^"]+"/, `"task_uuid":"${uuid(i + 2e6)}"`);
  return encoder.encode(text);
}

/** Events packed one after another in one buffer, read through subarray views (as from a ring). */
function packed(parts: Uint8Array[]): Uint8Array[] {
  const buffer = new Uint8Array(parts.reduce((n, p) => n + p.length + 8, 0));
  let offset = 0;
  return parts.map((p) => {
    buffer.set(p, offset);
    const view = buffer.subarray(offset, offset + p.length);
    offset += p.length + 8;
    return view;
  });
}

const sorted = sortKeys(fixture);
const distinctSorted = Array.from({ length: N }, (_, i) => distinct(sorted, i));
const variants: [string, Uint8Array[]][] = [
  ['floor: same bytes, fixture order', Array.from({ length: N }, () => encoder.encode(JSON.stringify(fixture)))],
  ['same bytes, serde order', Array.from({ length: N }, () => encoder.encode(JSON.stringify(sorted)))],
  ['distinct ids, fixture order', Array.from({ length: N }, (_, i) => distinct(fixture, i))],
  ['distinct ids, serde order', distinctSorted],
  ['distinct ids, serde order, packed in one buffer', packed(distinctSorted)],
];

let sink: unknown;
const perEvent = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, events] of variants) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) sink = (JSON.parse(decoder.decode(events[i])) as { event_id: string }).event_id;
    const list = perEvent.get(name) ?? [];
    list.push(((performance.now() - t0) * 1e6) / N);
    perEvent.set(name, list);
  }
}
if (typeof sink !== 'string') throw new Error('nothing parsed');
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
const floor = median(perEvent.get(variants[0]?.[0] as string) ?? []);
console.log('| variant | median per event | / floor |');
console.log('|---|---:|---:|');
for (const [name] of variants) {
  const m = median(perEvent.get(name) ?? []);
  console.log(`| ${name} | ${Math.round(m)} ns | ${(m / floor).toFixed(2)}x |`);
}
