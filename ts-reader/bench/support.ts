/**
 * What bench/hot-path.ts and bench/criterion-child.ts share: the fixtures kept in memory, a worker's set-up
 * and tear-down with its bookkeeping check, the FFI call count of an empty poll, the untimed waits, the cost
 * of a clock read, and the timed blocks both run. No clock is read here except by `timerOverhead`, which is
 * handed the caller's: each bench keeps its own clock and its own timed regions.
 */
import { readFileSync } from 'node:fs';
import { createFfiAdapter } from '../src/ffi/factory.ts';
import { adapterInternals, type NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import type { BootstrapConfig, FfiStepEvent, Transport } from '../src/protocol.ts';
import type { RingTransport } from '../src/ring/transport.ts';
import { detectRuntime } from '../src/runtime.ts';
import type { NapiStepEvent } from '../src/tasker-core/types.ts';
import { summarize } from './stats.ts';

// ---- fixtures (kept in memory) ---------------------------------------------------------------------

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), 'utf8');
/** The fixture step event compacted: the size Rust writes (2734 bytes). */
export const floorText = JSON.stringify(JSON.parse(fixture('step-event.json')));
export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
/** `floorText`'s bytes: what the floor decodes and parses from JS memory. */
export const floorBytes = encoder.encode(floorText);
/** The result JSON every completion carries, with its event's step_uuid (bench/completion.ts). */
export { completionFor, completionJson, resultsFor } from './completion.ts';

// ---- runtime -------------------------------------------------------------------------------------------

export const runtime = detectRuntime();

const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } }; process?: { versions?: { node?: string } } };

export function runtimeVersion(): string {
  if (runtime === 'bun') return g.Bun?.version ?? '?';
  if (runtime === 'deno') return g.Deno?.version.deno ?? '?';
  return g.process?.versions?.node ?? '?';
}

/** Progress and checks go to stderr (stdout carries the report or the protocol). */
export function log(line: string): void {
  console.error(`[${runtime}] ${line}`);
}

/** Median cost of one read of `now` (back-to-back pairs), subtracted from every call timed on its own. */
export function timerOverhead(now: () => number): number {
  const xs: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const t0 = now();
    const t1 = now();
    if (i >= 100_000) xs.push(t1 - t0);
  }
  return summarize(xs).median;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits (1 ms steps, untimed) until `check` holds; throws after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

// ---- the worker --------------------------------------------------------------------------------------

/** The adapter's ring transport, or null on the ffi transport (through the repository-only accessor). */
export function ringTransportOf(adapter: NativeFfiAdapter): RingTransport | null {
  return adapterInternals(adapter).ring;
}

/** A worker with nothing to produce (synthetic source, count 0): every poll comes back null. */
export function emptyConfig(transport: Transport): BootstrapConfig {
  return { transport, source: { kind: 'synthetic', count: 0 } };
}

/**
 * A worker that produces without end: an 8 MiB events ring (~3000 events) kept full, or a 4096-event ffi
 * queue.
 */
export function producingConfig(transport: Transport): BootstrapConfig {
  return transport === 'ring'
    ? { transport, events_capacity: 8 << 20, completions_capacity: 4 << 20, source: { kind: 'synthetic' } }
    : { transport, ffi_queue_capacity: 4096, source: { kind: 'synthetic' } };
}

/** `config` with the benches' namespace and quiet logs. */
export function benchConfig(config: BootstrapConfig): BootstrapConfig {
  return { namespace: 'bench', log_level: 'warn', log_stderr: false, ...config };
}

/** Starts a worker (quiet logs) and checks that the transport asked for is the one attached. */
export function bootstrap(config: BootstrapConfig): NativeFfiAdapter {
  const adapter = createFfiAdapter();
  adapter.bootstrapWorker(benchConfig(config));
  const ring = ringTransportOf(adapter);
  if (config.transport !== undefined && (config.transport === 'ring') !== (ring !== null)) {
    shutdown(adapter);
    throw new Error(`asked for the ${config.transport} transport, got ${adapter.transport}`);
  }
  return adapter;
}

export function shutdown(adapter: NativeFfiAdapter): void {
  try {
    adapter.stopWorker();
  } finally {
    adapter.close();
  }
}

/** Events ready to be read: frames published and not consumed (ring), or queued in Rust (ffi). */
export function readyEvents(adapter: NativeFfiAdapter): () => number {
  const ring = ringTransportOf(adapter);
  if (ring === null) return () => adapter.getFfiDispatchMetrics().pending_count;
  return () => {
    const m = ring.metrics();
    return m.events_published_frames - m.events_consumed_frames;
  };
}

/**
 * Every event read was completed: flushes, waits up to 5 s for none to be in flight, then checks that none
 * was refused (by the worker or by the library) and none failed, and logs the worker's counts; throws
 * `${what}: bookkeeping is off` otherwise.
 */
export async function settle(adapter: NativeFfiAdapter, what: string): Promise<void> {
  adapter.flushCompletions();
  let metrics = adapter.getFfiDispatchMetrics();
  const deadline = Date.now() + 5000;
  while (metrics.in_flight_count > 0 && Date.now() < deadline) {
    await sleep(5);
    adapter.flushCompletions();
    metrics = adapter.getFfiDispatchMetrics();
  }
  const refused = (metrics.refused_completions ?? 0) + adapter.completionStats().refused;
  const summary = `${metrics.completed_count} completed, ${metrics.in_flight_count} in flight, ${refused} refused, ${metrics.failed_count} failed`;
  if (metrics.in_flight_count !== 0 || refused !== 0 || metrics.failed_count !== 0) throw new Error(`${what}: bookkeeping is off: ${summary}`);
  log(`${what}: ${summary}`);
}

/** Wraps every function of the native library with a counter; returns the count and an undo. */
function countFfiCalls(adapter: NativeFfiAdapter): { calls: () => number; restore: () => void } {
  const native = adapterInternals(adapter).native as unknown as Record<string, unknown>;
  const saved: [string, unknown][] = [];
  let calls = 0;
  for (const key of Object.keys(native)) {
    const original = native[key];
    if (typeof original !== 'function') continue;
    saved.push([key, original]);
    native[key] = (...args: unknown[]) => {
      calls += 1;
      return (original as (...a: unknown[]) => unknown).apply(native, args);
    };
  }
  return {
    calls: () => calls,
    restore: () => {
      for (const [key, original] of saved) native[key] = original;
    },
  };
}

/** FFI calls per poll over `polls` empty polls (every native function wrapped, unwrapped afterwards). */
export function ffiCallsPerEmptyPoll(adapter: NativeFfiAdapter, polls: number): number {
  const counter = countFfiCalls(adapter);
  try {
    for (let i = 0; i < polls; i++) {
      if (adapter.pollStepEvents() !== null) throw new Error('an event arrived from a count-0 source');
    }
  } finally {
    counter.restore();
  }
  return counter.calls() / polls;
}

/**
 * Untimed set-up of a block of `n` completions: `n` events delivered just now (their real ids into `ids`,
 * their step uuids into `steps`) and, on the ring, room for the whole block in the completions ring (the
 * worker drained the previous one).
 */
export async function deliverForCompletion(adapter: NativeFfiAdapter, ready: () => number, n: number, ids: string[], steps: string[]): Promise<void> {
  await waitUntil(`${n} ready events`, () => ready() >= n);
  pollBlock(adapter, n, ids, steps);
  const ring = ringTransportOf(adapter);
  if (ring !== null) await waitUntil('an empty completions ring', () => ring.metrics().completions_pending_bytes === 0);
}

// ---- timed blocks (top-level functions: one shape each, easy on every JIT) -------------------------
// Blocks keep only each event's id and step_uuid (for the completion sent afterwards, which must name the
// event's step); the floor keeps the same, so both sides do the same bookkeeping and leave the same garbage
// to the collector.

/** `n` polls of a worker with nothing to read; returns how many returned an event (0 expected). */
export function emptyPollLoop(adapter: NativeFfiAdapter, n: number): number {
  let events = 0;
  for (let i = 0; i < n; i++) if (adapter.pollStepEvents() !== null) events += 1;
  return events;
}

/** Polls until `n` events arrived; returns the null polls on the way (a block with any is discarded). */
export function pollBlock(adapter: NativeFfiAdapter, n: number, ids: string[], steps: string[]): number {
  let got = 0;
  let nulls = 0;
  while (got < n) {
    const event = adapter.pollStepEvents();
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

/**
 * `pollBlock` for tasker-core's camelCase events: `poll` is a `pollStepEvents` of its `NapiModule` shape
 * (`createNapiModule()`'s or the napi reproduction's). A loop of its own rather than one loop with field
 * accessors: a timed loop keeps one event shape and no extra call per event.
 */
export function camelPollBlock(poll: () => NapiStepEvent | null, n: number, ids: string[], steps: string[]): number {
  let got = 0;
  let nulls = 0;
  while (got < n) {
    const event = poll();
    if (event === null) {
      nulls += 1;
      if (nulls > 50_000_000) throw new Error('the producer stopped');
      continue;
    }
    ids[got] = event.eventId;
    steps[got++] = event.stepUuid;
  }
  return nulls;
}

/** The floor: decode the same bytes from JS memory and parse them, `n` times. */
export function floorBlock(bytes: Uint8Array, n: number, ids: string[], steps: string[]): void {
  for (let i = 0; i < n; i++) {
    const event = JSON.parse(decoder.decode(bytes)) as FfiStepEvent;
    ids[i] = event.event_id;
    steps[i] = event.step_uuid;
  }
}

/** Texts encoded back to back in one buffer (one object, not thousands kept alive beside a timed run). */
export interface PackedTexts {
  bytes: Uint8Array;
  /** End offset of each text in `bytes`. */
  ends: Uint32Array;
}

export function packTexts(texts: readonly string[]): PackedTexts {
  const encoded = texts.map((t) => encoder.encode(t));
  const bytes = new Uint8Array(encoded.reduce((sum, b) => sum + b.length, 0));
  const ends = new Uint32Array(encoded.length);
  let at = 0;
  encoded.forEach((b, i) => {
    bytes.set(b, at);
    at += b.length;
    ends[i] = at;
  });
  return { bytes, ends };
}

/**
 * The floor over distinct events: `n` events decoded and parsed from JS memory, cycling through `texts`
 * (the burst's own events, captured). JavaScriptCore parses one text repeated up to 1.4x faster than as
 * many distinct texts of the same shape (V8 1.04x, Deno 1.1x, measured), so `floorBlock` over the fixture
 * flatters the floor on Bun.
 */
export function floorBlockOver(texts: PackedTexts, n: number, ids: string[], steps: string[]): void {
  const { bytes, ends } = texts;
  const k = ends.length;
  for (let i = 0, j = 0; i < n; i++, j = j + 1 === k ? 0 : j + 1) {
    const event = JSON.parse(decoder.decode(bytes.subarray(j === 0 ? 0 : (ends[j - 1] as number), ends[j]))) as FfiStepEvent;
    ids[i] = event.event_id;
    steps[i] = event.step_uuid;
  }
}

/** `n` completions written back to back, the i-th carrying `results[i]` (built beforehand: `resultsFor`). */
export function completeBlock(adapter: NativeFfiAdapter, ids: string[], results: string[], n: number): void {
  for (let i = 0; i < n; i++) adapter.completeStepEvent(ids[i] as string, results[i] as string);
}
