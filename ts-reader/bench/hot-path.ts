/**
 * The hot path of @tasker-systems/worker against the real libtasker_worker, on whichever runtime runs this
 * file (Node via tsx, Bun, Deno). `bench/run.ts` runs it under all three and prints one table; run alone it
 * prints its report as one `BENCH_JSON {...}` line on stdout (progress on stderr).
 *
 * Cases (one worker per case, stopped and the adapter closed at its end):
 * - empty poll: `pollStepEvents()` with nothing queued (synthetic count 0), ring vs ffi transport, in plain
 *   loops, layer by layer on the ring, and through mitata as a cross-check; FFI calls counted per poll;
 * - one event: a single `pollStepEvents()` that returned an event, timed call by call, ring vs ffi, against
 *   the floor (TextDecoder + JSON.parse of the fixture bytes from JS memory) timed the same way in between;
 * - batch of 1000: 1000 ready events drained in one loop, per event, paired round by round with the floor
 *   (fixture bytes, and the ring's own bytes captured into JS memory) and with `RingTransport.nextEvent()`;
 * - where the time goes: every layer of the ring path interleaved per event, plus block-timed what-ifs over
 *   regions built in JS memory (bench/lean-reader.ts) and of the adapter's in-flight bookkeeping;
 * - completion write: `completeStepEvent` with ids that were delivered, ring vs ffi, and encodeInto into JS
 *   memory as a reference.
 * Per-event cases run while the Rust worker produces concurrently (unlimited synthetic source). Only polls
 * that returned an event are counted; a block in which a poll came back null is discarded and retried.
 * Every event read is completed outside the timed region, with a result naming its event's step_uuid (the
 * worker core refuses another step's): events read through the adapter are completed through it, events
 * read below it (the transport, the reader) through the transport. No case forces a garbage collection.
 */
import { measure } from 'mitata';
import { now } from 'mitata/src/lib.mjs';
import { InFlightIds } from '../src/ffi/in-flight.ts';
import type { NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import type { FfiStepEvent } from '../src/protocol.ts';
import { Flags, RecordType } from '../src/ring/layout.ts';
import type { RingReader } from '../src/ring/reader.ts';
import { type RingTransport, RingTransport as RingTransportClass, transportInternals } from '../src/ring/transport.ts';
import { buildRegion, publishEvents, writeRawRecord } from '../tests/support/region-builder.ts';
import { LeanReader } from './lean-reader.ts';
import { type CaseResult, type PairedResult, type RuntimeReport, summarize } from './stats.ts';
import {
  bootstrap,
  completeBlock,
  completionFor,
  decoder,
  deliverForCompletion,
  emptyConfig,
  emptyPollLoop,
  encoder,
  ffiCallsPerEmptyPoll,
  floorBlock,
  floorBytes,
  log,
  pollBlock,
  producingConfig,
  readyEvents,
  resultsFor,
  ringTransportOf,
  runtime,
  runtimeVersion,
  settle,
  shutdown,
  timerOverhead,
  waitUntil,
} from './support.ts';

const QUICK = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.BENCH_QUICK === '1';
const scale = (n: number) => (QUICK ? Math.max(2, Math.ceil(n / 5)) : n);

/** Events per block in the batch case (and completions per block). */
const BLOCK = 1000;
/** Rounds of the batch phase (each runs every variant once) and of the completion cases. */
const BATCH_ROUNDS = scale(40);
const FFI_BATCH_ROUNDS = scale(12);
const COMPLETION_ROUNDS = scale(20);
/** Cycles of the interleaved per-layer breakdown (each reads 3 ring events). */
const BREAKDOWN_CYCLES = scale(4800);
/** Rounds of the block-timed what-ifs over JS memory. */
const WHAT_IF_ROUNDS = scale(30);
const WARMUP_ROUNDS = QUICK ? 1 : 3;
/** Events timed one call at a time, in chunks (each chunk waits for that many ready events first). */
const PER_CALL_EVENTS = scale(8000);
const FFI_PER_CALL_EVENTS = scale(3000);
const CHUNK = 500;
/** Empty polls per timed loop, and loops per layer. */
const EMPTY_LOOP = 200_000;
const EMPTY_ROUNDS = scale(25);
/** mitata's time budget per empty-poll measurement (a cross-check of the loops). */
const MITATA_CPU_NS = QUICK ? 100e6 : 400e6;

// ---- plumbing --------------------------------------------------------------------------------------

function ringOfTransport(ring: RingTransport): RingReader {
  return transportInternals(ring).reader;
}

function leanOf(transport: RingTransport): LeanReader {
  const views = transportInternals(transport).views;
  // The transport's own reader holds the consumer role and has read nothing: the lean one reads instead.
  return new LeanReader(views, views.events);
}

function ringOf(adapter: NativeFfiAdapter): { ring: RingTransport; reader: RingReader } {
  const ring = ringTransportOf(adapter);
  if (ring === null) throw new Error('no ring transport attached');
  return { ring, reader: ringOfTransport(ring) };
}

/** Keeps results observable so no engine can drop the work. */
let sink: unknown = null;

function caseOf(samples: number[], ops: number, extra: Partial<CaseResult> = {}, minus = 0): CaseResult {
  const s = summarize(samples);
  return { ns: s.median - minus, p25: s.p25 - minus, p75: s.p75 - minus, samples: samples.length, ops, ...extra };
}

function pairedOf(values: number[]): PairedResult {
  const s = summarize(values);
  return { value: s.median, p25: s.p25, p75: s.p75, pairs: values.length };
}

// ---- timed blocks (top-level functions: one shape each, easy on every JIT) -------------------------
// Blocks keep only each event's id and step_uuid (for the completion sent afterwards); the floor keeps the
// same, so both sides leave the same garbage to the collector.

/** The reader layer alone: frame checks, decode of the payload out of shared memory, release. No parse. */
function readerBlock(reader: RingReader, n: number, texts: string[]): number {
  let got = 0;
  let nulls = 0;
  while (got < n) {
    const message = reader.next();
    if (message === null) {
      nulls += 1;
      if (nulls > 50_000_000) throw new Error('the producer stopped');
      continue;
    }
    texts[got++] = message.text;
  }
  return nulls;
}

/** The floor over `n` distinct byte arrays (the captured ring events, laid out like ring frames). */
function floorCopiesBlock(copies: Uint8Array[], n: number, ids: string[], steps: string[]): void {
  for (let i = 0; i < n; i++) {
    const event = JSON.parse(decoder.decode(copies[i] as Uint8Array)) as FfiStepEvent;
    ids[i] = event.event_id;
    steps[i] = event.step_uuid;
  }
}

/** The transport layer: what `pollStepEvents` calls, without the adapter's in-flight bookkeeping. */
function nextEventBlock(ring: RingTransport, n: number, ids: string[], steps: string[]): number {
  let got = 0;
  let nulls = 0;
  while (got < n) {
    const event = ring.nextEvent();
    if (event === null) {
      nulls += 1;
      if (nulls > 50_000_000) throw new Error('the producer stopped');
      continue;
    }
    ids[got] = event.event_id;
    steps[got++] = event.step_uuid;
  }
  return nulls;
}

function leanBlock(reader: LeanReader, n: number, texts: string[]): void {
  for (let i = 0; i < n; i++) {
    const message = reader.next();
    if (message === null) throw new Error('the local region ran dry');
    texts[i] = message.text;
  }
}

function decodeCopiesBlock(copies: Uint8Array[], n: number, texts: string[]): void {
  for (let i = 0; i < n; i++) texts[i] = decoder.decode(copies[i] as Uint8Array);
}

/** `NativeFfiAdapter.pollStepEvents`'s bookkeeping per event (`InFlightIds`): `inFlight.set(event.event_id, Date.now())`. */
function bookkeepingBlock(map: InFlightIds, ids: string[], n: number): void {
  for (let i = 0; i < n; i++) map.set(ids[i] as string, Date.now());
}

/** The same with one clock read per block (what a poll that drains a batch could do). */
function bookkeepingNoClockBlock(map: InFlightIds, ids: string[], n: number): void {
  const at = Date.now();
  for (let i = 0; i < n; i++) map.set(ids[i] as string, at);
}

/** Reference for a completion write: the id's 36 bytes and the result JSON encoded into JS memory. */
function encodeFloorBlock(ids: string[], results: string[], n: number, scratch: Uint8Array): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i] as string;
    for (let j = 0; j < id.length; j++) scratch[j] = id.charCodeAt(j);
    total += encoder.encodeInto(results[i] as string, scratch.subarray(id.length)).written;
  }
  return total;
}

// ---- cases -----------------------------------------------------------------------------------------

async function mitataNs(fn: () => unknown): Promise<CaseResult> {
  // No forced collection (gc: false): a forced full GC before a timed region slowed V8 measurably
  // (Deno's ring completion 0.8 us -> 7 us), so no case here forces one.
  const stats = await measure(fn, { min_cpu_time: MITATA_CPU_NS, gc: false });
  return { ns: stats.p50, p25: stats.p25, p75: stats.p75, samples: stats.samples.length, ops: stats.ticks, note: 'mitata' };
}

// Empty polls in a plain loop (`emptyPollLoop`, then one loop per layer below it): one call site per layer,
// as the poller's own loop has. (mitata's generated loop shares one call site between measurements; when
// that site goes polymorphic every op it measures gains a call of ~4-5 ns, so its figures are kept as a
// cross-check only.)
function emptyNextEventLoop(ring: RingTransport, n: number): number {
  let events = 0;
  for (let i = 0; i < n; i++) if (ring.nextEvent() !== null) events += 1;
  return events;
}

function emptyReaderLoop(reader: RingReader, n: number): number {
  let events = 0;
  for (let i = 0; i < n; i++) if (reader.next() !== null) events += 1;
  return events;
}

function hasPendingLoop(reader: RingReader, n: number): number {
  let pending = 0;
  for (let i = 0; i < n; i++) if (reader.hasPending()) pending += 1;
  return pending;
}

/** The reader's fields a what-if empty check reads (the real reader object, so the same hidden class). */
interface ReaderFields {
  readonly i32: Int32Array;
  readonly headIndex: number;
  readonly tail: number;
  readonly closed: boolean;
}

/**
 * What-if: `hasPending()` with a plain (non-atomic) load of producer_position as a hint. An empty poll then
 * costs no Atomics.load; a poll that sees data must still do the Acquire load before reading a frame.
 */
function plainHintLoop(reader: ReaderFields, n: number): number {
  let pending = 0;
  for (let i = 0; i < n; i++) if (!reader.closed && (reader.i32[reader.headIndex] as number) >>> 0 !== reader.tail) pending += 1;
  return pending;
}

function atomicsLoadLoop(i32: Int32Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Atomics.load(i32, 3);
  return sum;
}

function emptyLoop(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += i & 1;
  return sum;
}

async function emptyPoll(transport: 'ring' | 'ffi', report: RuntimeReport): Promise<void> {
  log(`empty poll, ${transport}`);
  const adapter = bootstrap(emptyConfig(transport));
  try {
    // Nothing is queued (count 0): every poll must come back null. Count FFI calls over 10k polls first.
    report.checks[`empty poll ${transport}: FFI calls per poll`] = ffiCallsPerEmptyPoll(adapter, 10_000);
    const n = transport === 'ring' ? EMPTY_LOOP : EMPTY_LOOP / 10;
    const loop = (run: (n: number) => number) => (): number => {
      const t0 = now();
      if (run(n) !== 0) throw new Error('an empty poll returned an event');
      return (now() - t0) / n;
    };
    const layers: Variant[] = [[transport, loop((k) => emptyPollLoop(adapter, k))]];
    if (transport === 'ring') {
      // Where an empty ring poll's time goes, layer by layer (each layer calls the one below).
      const { ring, reader } = ringOf(adapter);
      const i32 = new Int32Array(new ArrayBuffer(64));
      layers.push(
        ['ring.nextEvent', loop((k) => emptyNextEventLoop(ring, k))],
        ['ring.readerNext', loop((k) => emptyReaderLoop(reader, k))],
        ['ring.hasPending', loop((k) => hasPendingLoop(reader, k))],
        ['ring.plainHint', loop((k) => plainHintLoop(reader as unknown as ReaderFields, k))],
        ['atomicsLoad', loop((k) => atomicsLoadLoop(i32, k))],
        // emptyLoop sums i & 1: k / 2 for an even k, so this layer passes the loop's zero check too.
        ['loop', loop((k) => emptyLoop(k) - (k >> 1))],
      );
    }
    const perRound = new Map<string, number[]>();
    await rounds(layers, EMPTY_ROUNDS, perRound);
    for (const [name, values] of perRound) report.cases[`empty.${name}`] = caseOf(values, values.length * n);
    report.cases[`empty.${transport}.mitata`] = await mitataNs(() => adapter.pollStepEvents());
  } finally {
    shutdown(adapter);
  }
}

/**
 * One event at a time: each `pollStepEvents()` that returned an event is timed on its own, and the floor is
 * timed the same way right after it (same timer, same overhead subtracted). Chunks of 500 wait for 500
 * ready events first, then complete them all outside the timed calls.
 */
async function perCall(
  adapter: NativeFfiAdapter,
  total: number,
  ready: () => number,
  key: 'ring' | 'ffi',
  report: RuntimeReport,
  overhead: number,
): Promise<void> {
  const transportSamples: number[] = [];
  const floorSamples: number[] = [];
  const chunkRatios: number[] = [];
  const ids: string[] = [];
  const steps: string[] = [];
  const floorIds: string[] = [];
  let skipped = 0;
  let warm = WARMUP_ROUNDS;
  while (transportSamples.length < total) {
    await waitUntil(`${CHUNK} ready events`, () => ready() >= CHUNK);
    const chunkT: number[] = [];
    const chunkF: number[] = [];
    while (chunkT.length < CHUNK) {
      const t0 = now();
      const event = adapter.pollStepEvents();
      const t1 = now();
      if (event === null) {
        skipped += 1;
        continue;
      }
      const t2 = now();
      const parsed = JSON.parse(decoder.decode(floorBytes)) as FfiStepEvent;
      const t3 = now();
      chunkT.push(t1 - t0);
      chunkF.push(t3 - t2);
      ids.push(event.event_id);
      steps.push(event.step_uuid);
      floorIds.push(parsed.event_id);
    }
    completeBlock(adapter, ids, resultsFor(steps, ids.length, []), ids.length);
    adapter.flushCompletions();
    sink = floorIds[floorIds.length - 1];
    ids.length = 0;
    steps.length = 0;
    floorIds.length = 0;
    if (warm > 0) {
      warm -= 1;
      continue;
    }
    transportSamples.push(...chunkT);
    floorSamples.push(...chunkF);
    chunkRatios.push((summarize(chunkT).median - overhead) / (summarize(chunkF).median - overhead));
  }
  report.cases[`one.${key}`] = caseOf(transportSamples, transportSamples.length, { skipped }, overhead);
  report.cases[`one.floor.${key}`] = caseOf(floorSamples, floorSamples.length, {}, overhead);
  report.paired[`one.${key}/floor`] = pairedOf(chunkRatios);
}

/** A region in JS memory with `payloads` as frames on its events ring (the test suite's builder). */
function localRegion(payloads: readonly Uint8Array[]): RingTransport {
  const buffer = buildRegion({ eventsCapacity: 4 << 20, completionsCapacity: 16 << 10, maxFrameSize: 8192 });
  let pos = 0;
  payloads.forEach((payload, i) => {
    pos = writeRawRecord(buffer, pos, 16 + payload.length, RecordType.STEP_EVENT, Flags.UNFRAGMENTED, i, payload);
  });
  publishEvents(buffer, pos);
  return new RingTransportClass(buffer);
}

/** Copies of `payloads` in one JS buffer, laid out like ring frames (16-byte header, 8-byte aligned). */
function framedCopies(payloads: readonly Uint8Array[]): Uint8Array[] {
  const footprint = (p: Uint8Array) => (16 + p.length + 7) & ~7;
  const buffer = new Uint8Array(payloads.reduce((n, p) => n + footprint(p), 0));
  let at = 0;
  return payloads.map((p) => {
    const view = buffer.subarray(at + 16, at + 16 + p.length);
    view.set(p);
    at += footprint(p);
    return view;
  });
}

type Variant = [name: string, run: () => Promise<number> | number];

/** Runs every variant once per round in a rotating order; returns each variant's per-event ns per round. */
async function rounds(variants: readonly Variant[], count: number, into: Map<string, number[]>): Promise<void> {
  for (const [name] of variants) into.set(name, []);
  for (let round = 0; round < WARMUP_ROUNDS + count; round++) {
    for (let k = 0; k < variants.length; k++) {
      const [name, run] = variants[(k + round) % variants.length] as Variant;
      const ns = await run();
      if (round >= WARMUP_ROUNDS) into.get(name)?.push(ns);
    }
  }
}

/** The layers of the ring path, each op timed on its own, all interleaved (see `breakdown`). */
const LAYERS = [
  'ring',
  'ring.nextEvent',
  'ring.readerNext',
  'local.nextEvent',
  'local.readerNext',
  'floor.captured',
  'decode.captured',
  'floor',
  'bookkeeping',
] as const;

/**
 * Where the ring's time per event goes. One cycle runs every layer once, in a rotating order, each op timed
 * on its own; the median of each layer is taken over all cycles, so every layer sees the same noise:
 * - ring: `adapter.pollStepEvents()`; ring.nextEvent: `RingTransport.nextEvent()` (no adapter bookkeeping);
 *   ring.readerNext: `RingReader.next()` (frame checks, decode from shared memory, release; no parse);
 * - local.*: the same two layers over a region in JS memory holding the captured events (no other core);
 * - floor.captured / decode.captured: the captured events decoded (+ parsed) from JS memory;
 * - floor: the fixture bytes (the headline floor); bookkeeping: `inFlight.set(id, Date.now())` alone.
 */
async function breakdown(
  adapter: NativeFfiAdapter,
  capturedTexts: readonly string[],
  captured: readonly Uint8Array[],
  ready: () => number,
  report: RuntimeReport,
  overhead: number,
): Promise<void> {
  const { ring, reader } = ringOf(adapter);
  const samples = LAYERS.map(() => [] as number[]);
  const cyclesPerChunk = 300;
  /**
   * Events read through the adapter (completed through it) and below it (completed through the transport):
   * event_id, step_uuid, event_id, ... (only the strings kept, as before, not the events).
   */
  const viaAdapter: string[] = [];
  const viaRing: string[] = [];
  let inFlight = new InFlightIds();
  let localEvents = localRegion(captured);
  let localTexts = localRegion(captured);
  let usedEvents = 0;
  let usedTexts = 0;
  let next = 0;
  let skipped = 0;
  const chunks = WARMUP_ROUNDS + Math.ceil(BREAKDOWN_CYCLES / cyclesPerChunk);
  try {
    for (let chunk = 0; chunk < chunks; chunk++) {
      await waitUntil('ready events', () => ready() >= 3 * cyclesPerChunk + 100);
      for (let cycle = 0; cycle < cyclesPerChunk; cycle++) {
        if (usedEvents === captured.length) {
          localEvents.close();
          localEvents = localRegion(captured);
          usedEvents = 0;
        }
        if (usedTexts === captured.length) {
          localTexts.close();
          localTexts = localRegion(captured);
          usedTexts = 0;
        }
        const i = next;
        next = (next + 1) % captured.length;
        const bytes = captured[i] as Uint8Array;
        const freshId = (JSON.parse(capturedTexts[i] as string) as FfiStepEvent).event_id;
        if (inFlight.size >= BLOCK) inFlight = new InFlightIds();
        for (let k = 0; k < LAYERS.length; k++) {
          const layer = (k + cycle) % LAYERS.length;
          let t0 = 0;
          let t1 = 0;
          let read: FfiStepEvent | null = null;
          switch (layer) {
            case 0: {
              t0 = now();
              read = adapter.pollStepEvents();
              t1 = now();
              break;
            }
            case 1: {
              t0 = now();
              read = ring.nextEvent();
              t1 = now();
              break;
            }
            case 2: {
              t0 = now();
              const message = reader.next();
              t1 = now();
              read = message === null ? null : (JSON.parse(message.text) as FfiStepEvent);
              break;
            }
            case 3: {
              t0 = now();
              sink = localEvents.nextEvent();
              t1 = now();
              usedEvents += 1;
              break;
            }
            case 4: {
              t0 = now();
              sink = ringOfTransport(localTexts).next();
              t1 = now();
              usedTexts += 1;
              break;
            }
            case 5:
              t0 = now();
              sink = JSON.parse(decoder.decode(bytes));
              t1 = now();
              break;
            case 6:
              t0 = now();
              sink = decoder.decode(bytes);
              t1 = now();
              break;
            case 7:
              t0 = now();
              sink = JSON.parse(decoder.decode(floorBytes));
              t1 = now();
              break;
            default:
              t0 = now();
              inFlight.set(freshId, Date.now());
              t1 = now();
          }
          if (layer <= 2) {
            if (read === null) {
              skipped += 1;
              continue;
            }
            (layer === 0 ? viaAdapter : viaRing).push(read.event_id, read.step_uuid);
          }
          if (chunk >= WARMUP_ROUNDS) samples[layer]?.push(t1 - t0);
        }
      }
      for (let j = 0; j < viaAdapter.length; j += 2) adapter.completeStepEvent(viaAdapter[j] as string, completionFor(viaAdapter[j + 1] as string));
      for (let j = 0; j < viaRing.length; j += 2) ring.complete(viaRing[j] as string, completionFor(viaRing[j + 1] as string));
      adapter.flushCompletions();
      viaAdapter.length = 0;
      viaRing.length = 0;
    }
  } finally {
    localEvents.close();
    localTexts.close();
  }
  const median = new Map<string, number>();
  LAYERS.forEach((name, k) => {
    const result = caseOf(samples[k] ?? [], samples[k]?.length ?? 0, name.startsWith('ring') ? { skipped } : {}, overhead);
    report.cases[`layer.${name}`] = result;
    median.set(name, result.ns);
  });
  const m = (name: string) => median.get(name) ?? Number.NaN;
  const diffs: Record<string, number> = {
    'ring - floor': m('ring') - m('floor'),
    'ring - floor.captured': m('ring') - m('floor.captured'),
    'event bytes: floor.captured - floor': m('floor.captured') - m('floor'),
    'adapter: ring - ring.nextEvent': m('ring') - m('ring.nextEvent'),
    'adapter emulated: bookkeeping': m('bookkeeping'),
    'shared memory: ring.nextEvent - local.nextEvent': m('ring.nextEvent') - m('local.nextEvent'),
    'reader+transport code: local.nextEvent - floor.captured': m('local.nextEvent') - m('floor.captured'),
    'shared memory, decode only: ring.readerNext - local.readerNext': m('ring.readerNext') - m('local.readerNext'),
    'reader code, decode only: local.readerNext - decode.captured': m('local.readerNext') - m('decode.captured'),
    'transport parse step: ring.nextEvent - ring.readerNext': m('ring.nextEvent') - m('ring.readerNext'),
    'JSON.parse alone: floor.captured - decode.captured': m('floor.captured') - m('decode.captured'),
  };
  report.breakdown = diffs;
}

async function ringEvents(report: RuntimeReport, overhead: number): Promise<void> {
  log('ring transport, events (one at a time, batch of 1000, breakdown)');
  const adapter = bootstrap(producingConfig('ring'));
  try {
    const { ring, reader } = ringOf(adapter);
    const ready = readyEvents(adapter);
    /** Completes events read through the adapter (`adapter`) or below it (`ring`), each with its step's result. */
    const completeEvents = (via: 'adapter' | 'ring', ids: readonly string[], steps: readonly string[]) => {
      for (let i = 0; i < ids.length; i++) {
        const result = completionFor(steps[i] as string);
        if (via === 'adapter') adapter.completeStepEvent(ids[i] as string, result);
        else ring.complete(ids[i] as string, result);
      }
      adapter.flushCompletions();
    };
    await waitUntil('the first events', () => ready() >= BLOCK);

    // 1000 events exactly as Rust wrote them (serde_json: keys sorted, a fresh event_id and step_uuid
    // each), copied out once: the floor over the ring's own bytes, from JS memory.
    const capturedTexts: string[] = new Array(BLOCK);
    readerBlock(reader, BLOCK, capturedTexts);
    const capturedEvents = capturedTexts.map((t) => JSON.parse(t) as FfiStepEvent);
    completeEvents(
      'ring',
      capturedEvents.map((e) => e.event_id),
      capturedEvents.map((e) => e.step_uuid),
    );
    const captured = framedCopies(capturedTexts.map((t) => encoder.encode(t)));
    report.checks['event bytes: ring / compacted fixture'] = `${captured[0]?.length} / ${floorBytes.length}`;

    await perCall(adapter, PER_CALL_EVENTS, ready, 'ring', report, overhead);

    let discarded = 0;
    const ids: string[] = new Array(BLOCK);
    const steps: string[] = new Array(BLOCK);
    /** Times one block of ring reads (after waiting for BLOCK ready events); completes them afterwards. */
    const consume = async (block: (n: number) => number, afterwards: () => void): Promise<number> => {
      await waitUntil(`${BLOCK} ready events`, () => ready() >= BLOCK);
      for (;;) {
        const t0 = now();
        const nulls = block(BLOCK);
        const t1 = now();
        afterwards();
        if (nulls === 0) return (t1 - t0) / BLOCK;
        discarded += 1;
        await waitUntil(`${BLOCK} ready events`, () => ready() >= BLOCK);
      }
    };
    const pure = (block: (n: number) => void): number => {
      const t0 = now();
      block(BLOCK);
      const t1 = now();
      sink = ids[BLOCK - 1];
      return (t1 - t0) / BLOCK;
    };
    const completeRead = () => completeEvents('adapter', ids, steps);
    const completeTaken = () => completeEvents('ring', ids, steps);
    const perRound = new Map<string, number[]>();
    await rounds(
      [
        ['ring', () => consume((n) => pollBlock(adapter, n, ids, steps), completeRead)],
        ['ring.nextEvent', () => consume((n) => nextEventBlock(ring, n, ids, steps), completeTaken)],
        ['floor', () => pure((n) => floorBlock(floorBytes, n, ids, steps))],
        ['floor.captured', () => pure((n) => floorCopiesBlock(captured, n, ids, steps))],
      ],
      BATCH_ROUNDS,
      perRound,
    );
    for (const [name, values] of perRound) report.cases[`batch.${name}`] = caseOf(values, values.length * BLOCK);
    report.cases['batch.ring'] = { ...(report.cases['batch.ring'] as CaseResult), skipped: discarded, note: `${discarded} blocks discarded` };
    const of = (phase: Map<string, number[]>, name: string) => phase.get(name) ?? [];
    const ratio = (phase: Map<string, number[]>, a: string, b: string) => pairedOf(of(phase, a).map((x, i) => x / (of(phase, b)[i] as number)));
    const diff = (phase: Map<string, number[]>, a: string, b: string) => pairedOf(of(phase, a).map((x, i) => x - (of(phase, b)[i] as number)));
    report.paired['batch.ring/floor'] = ratio(perRound, 'ring', 'floor');
    report.paired['batch.ring/floor.captured'] = ratio(perRound, 'ring', 'floor.captured');
    report.paired['batch.ring.nextEvent/floor'] = ratio(perRound, 'ring.nextEvent', 'floor');
    report.paired['diff:batch ring - ring.nextEvent'] = diff(perRound, 'ring', 'ring.nextEvent');

    // What-ifs over JS memory, block-timed: the reader as it is vs the lean variant (bench/lean-reader.ts),
    // and the adapter's per-event bookkeeping with and without a clock read per event.
    const texts: string[] = new Array(BLOCK);
    const freshIds = () => capturedTexts.map((t) => (JSON.parse(t) as FfiStepEvent).event_id);
    const inFlight = new InFlightIds();
    const whatIf = new Map<string, number[]>();
    await rounds(
      [
        ['reader.next', () => localBlock((t) => pure((n) => readerBlock(ringOfTransport(t), n, texts)))],
        ['leanReader.next', () => localBlock((t) => pure((n) => leanBlock(leanOf(t), n, texts)))],
        ['decode', () => pure((n) => decodeCopiesBlock(captured, n, texts))],
        ['bookkeeping', () => bookkeep(inFlight, freshIds(), (map, keys, n) => bookkeepingBlock(map, keys, n))],
        ['bookkeeping.noClock', () => bookkeep(inFlight, freshIds(), (map, keys, n) => bookkeepingNoClockBlock(map, keys, n))],
      ],
      WHAT_IF_ROUNDS,
      whatIf,
    );
    for (const [name, values] of whatIf) report.cases[`whatif.${name}`] = caseOf(values, values.length * BLOCK);
    report.paired['diff:reader.next - decode'] = diff(whatIf, 'reader.next', 'decode');
    report.paired['diff:leanReader.next - decode'] = diff(whatIf, 'leanReader.next', 'decode');
    report.paired['diff:lean reader gain'] = diff(whatIf, 'reader.next', 'leanReader.next');
    report.paired['diff:clock per event'] = diff(whatIf, 'bookkeeping', 'bookkeeping.noClock');

    /** A fresh region in JS memory holding the captured events, for one timed block. */
    function localBlock(run: (transport: RingTransport) => number): number {
      const transport = localRegion(captured);
      try {
        return run(transport);
      } finally {
        transport.close();
      }
    }
    function bookkeep(map: InFlightIds, keys: string[], block: (map: InFlightIds, keys: string[], n: number) => void): number {
      const ns = pure((n) => block(map, keys, n));
      for (const key of keys) map.delete(key);
      return ns;
    }

    await breakdown(adapter, capturedTexts, captured, ready, report, overhead);

    await settle(adapter, 'ring events');
  } finally {
    shutdown(adapter);
  }
}

async function ffiEvents(report: RuntimeReport, overhead: number): Promise<void> {
  log('ffi transport, events (one at a time, batch of 1000)');
  const adapter = bootstrap(producingConfig('ffi'));
  try {
    const ready = readyEvents(adapter);
    await waitUntil('the first events', () => ready() >= BLOCK);
    await perCall(adapter, FFI_PER_CALL_EVENTS, ready, 'ffi', report, overhead);
    const ids: string[] = new Array(BLOCK);
    const steps: string[] = new Array(BLOCK);
    const floorIds: string[] = new Array(BLOCK);
    const floorSteps: string[] = new Array(BLOCK);
    const ffi: number[] = [];
    const floor: number[] = [];
    let discarded = 0;
    for (let round = 0; round < WARMUP_ROUNDS + FFI_BATCH_ROUNDS; round++) {
      const order = round % 2 === 0 ? ['ffi', 'floor'] : ['floor', 'ffi'];
      for (const which of order) {
        if (which === 'floor') {
          const t0 = now();
          floorBlock(floorBytes, BLOCK, floorIds, floorSteps);
          const t1 = now();
          sink = floorIds[BLOCK - 1];
          if (round >= WARMUP_ROUNDS) floor.push((t1 - t0) / BLOCK);
          continue;
        }
        for (;;) {
          await waitUntil(`${BLOCK} queued events`, () => ready() >= BLOCK);
          const t0 = now();
          const nulls = pollBlock(adapter, BLOCK, ids, steps);
          const t1 = now();
          completeBlock(adapter, ids, resultsFor(steps, BLOCK, []), BLOCK);
          if (nulls === 0) {
            if (round >= WARMUP_ROUNDS) ffi.push((t1 - t0) / BLOCK);
            break;
          }
          discarded += 1;
        }
      }
    }
    report.cases['batch.ffi'] = caseOf(ffi, ffi.length * BLOCK, { skipped: discarded, note: `${discarded} blocks discarded` });
    report.cases['batch.floor.ffi'] = caseOf(floor, floor.length * BLOCK);
    report.paired['batch.ffi/floor'] = pairedOf(ffi.map((x, i) => x / (floor[i] as number)));
    await settle(adapter, 'ffi events');
  } finally {
    shutdown(adapter);
  }
}

async function completions(transport: 'ring' | 'ffi', report: RuntimeReport): Promise<void> {
  log(`completion write, ${transport}`);
  const adapter = bootstrap({
    transport,
    events_capacity: 8 << 20,
    completions_capacity: 4 << 20,
    ffi_queue_capacity: 4096,
    source: { kind: 'synthetic' },
  });
  try {
    const ready = readyEvents(adapter);
    const ids: string[] = new Array(BLOCK);
    const steps: string[] = new Array(BLOCK);
    const results: string[] = new Array(BLOCK);
    const scratch = new Uint8Array(64 * 1024);
    const writes: number[] = [];
    const floor: number[] = [];
    let queuedAfter = 0;
    for (let round = 0; round < WARMUP_ROUNDS + COMPLETION_ROUNDS; round++) {
      // Real ids: events delivered just now, and room for them all; each event's result naming its step,
      // built flat (bench/completion.ts). All outside the timed region: the write is timed as with one string.
      await deliverForCompletion(adapter, ready, BLOCK, ids, steps);
      resultsFor(steps, BLOCK, results);
      const t0 = now();
      completeBlock(adapter, ids, results, BLOCK);
      const t1 = now();
      queuedAfter += adapter.flushCompletions();
      const t2 = now();
      sink = encodeFloorBlock(ids, results, BLOCK, scratch);
      const t3 = now();
      if (round >= WARMUP_ROUNDS) {
        writes.push((t1 - t0) / BLOCK);
        floor.push((t3 - t2) / BLOCK);
      }
    }
    report.cases[`complete.${transport}`] = caseOf(writes, writes.length * BLOCK);
    if (transport === 'ring') {
      report.cases['complete.floor'] = caseOf(floor, floor.length * BLOCK);
      report.checks['completions left queued in JS (ring full)'] = queuedAfter;
    }
    await settle(adapter, `${transport} completions`);
  } finally {
    shutdown(adapter);
  }
}

// ---- main ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = now();
  const overhead = timerOverhead(now);
  const report: RuntimeReport = {
    runtime,
    version: runtimeVersion(),
    timerOverheadNs: overhead,
    cases: {},
    paired: {},
    breakdown: {},
    checks: { quick: QUICK },
    seconds: 0,
  };
  log(`${report.version}, timer overhead ${overhead.toFixed(0)} ns${QUICK ? ', quick' : ''}`);
  await emptyPoll('ring', report);
  await emptyPoll('ffi', report);
  await ringEvents(report, overhead);
  await ffiEvents(report, overhead);
  await completions('ring', report);
  await completions('ffi', report);
  report.seconds = (now() - started) / 1e9;
  void sink;
  console.log(`BENCH_JSON ${JSON.stringify(report)}`);
}

await main();
