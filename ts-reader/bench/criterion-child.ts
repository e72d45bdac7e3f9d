/**
 * The JS side of `crates/tasker-worker-ffi/benches/js_consumer.rs`: a long-lived child (Node via tsx, Bun or
 * Deno) that criterion's `iter_custom` drives. It runs N iterations of one case against the real
 * libtasker_worker (`TASKER_LIBRARY_PATH`) and reports the elapsed time it measured itself.
 *
 * Protocol, one JSON line each way (stdout carries protocol lines only; logs go to stderr):
 *   child -> `{"ready":true,"runtime":"node","version":"20.20.2","clock":"...","timer_overhead_ns":...,"napi":"loaded"}`
 *   (`napi`: "loaded", or why the napi reproduction is not: bench/napi-repro.ts)
 *   `{"case":"empty_poll","path":"ring","iters":N}` -> `{"ns":<elapsed ns of the N iterations>}` or `{"error":"..."}`
 *   `{"cmd":"quit"}` -> `{"bye":true}` once the worker is stopped and its bookkeeping checked; the child exits.
 * The child also stops its worker and exits when stdin closes.
 *
 * Cases (paths): what one iteration is; only the named operation is inside the timed region.
 * - `empty_poll` (ring, ffi): one `adapter.pollStepEvents()` on a running worker with nothing to read
 *   (synthetic source `count: 0`), N calls in one plain loop. At set-up the ring's FFI calls are counted
 *   over 10 000 polls (every native function wrapped); anything but 0 per poll is refused as an error.
 * - `one_event` (ring, ffi, floor, module, napi): one `pollStepEvents()` that returned the 2734-byte event,
 *   each call timed on its own (the timer's own cost, measured at start-up, subtracted per call) with an
 *   untimed parse of the fixture between two calls (a handler's stand-in); polls that came back null are not
 *   counted. floor: `JSON.parse(new TextDecoder().decode(bytes))` of the compacted fixture from JS memory,
 *   timed the same way. module: `createNapiModule().pollStepEvents()` of `@tasker-systems/worker/tasker-core`
 *   on the ring (the event in tasker-core's camelCase `NapiStepEvent`, made by src/tasker-core/event-mapping.ts).
 *   napi: the reproduction of tasker-core's own napi-rs module (benches/napi-repro: a global mutex, a clone of
 *   the held event, the object built by napi-rs) polled for the fixture event, no worker running.
 * - `batch_1000` (the same paths): 1000 ready events drained in one loop, one clock pair per batch; a batch
 *   in which a poll came back null is discarded and retried. floor: the same loop over the fixture bytes.
 * - `completion` (ring, ffi): one `completeStepEvent(id, fixtures/completion-success.json)` with an id
 *   delivered just before (untimed), in blocks of up to 1000 written back to back. Each result names its
 *   event's step_uuid (the worker core refuses another step's): the fixture with the uuid spliced in, built
 *   before the clock starts (bench/completion.ts), so the timed write is the same as with one shared string.
 * Per-event cases wait (untimed) until enough events are ready, the worker producing concurrently from an
 * unlimited synthetic source; every event read is completed outside the timed region.
 *
 * The library holds one worker per process, so the child keeps one worker at a time: it is set up lazily by
 * the first request that needs its configuration (transport x empty or unlimited source) and kept across
 * requests (criterion's warm-up and samples of one benchmark); a request that needs another configuration,
 * or none (floor), stops it first, after checking that every event read was completed and none refused.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import type { NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import type { BootstrapConfig, FfiStepEvent, Transport } from '../src/protocol.ts';
import { createNapiModule, moduleAdapter, type TaskerCoreModule } from '../src/tasker-core/module.ts';
import type { NapiStepEvent } from '../src/tasker-core/types.ts';
import { loadNapiRepro, type NapiReproLoad } from './napi-repro.ts';
import {
  benchConfig,
  bootstrap,
  camelPollBlock,
  completeBlock,
  completionFor,
  decoder,
  deliverForCompletion,
  emptyConfig,
  emptyPollLoop,
  ffiCallsPerEmptyPoll,
  floorBlock,
  floorBytes,
  floorText,
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

const g = globalThis as { Bun?: { nanoseconds: () => number } };

/** Events per block in the batch case, and the most completions written back to back. */
const BLOCK = 1000;
/** Events timed one call at a time per chunk (each chunk first waits for that many ready events). */
const CHUNK = 500;
/** Polls over which the FFI calls of an empty poll are counted at set-up. */
const FFI_COUNT_POLLS = 10_000;

// ---- clock -----------------------------------------------------------------------------------------

/** A monotonic clock in ns: Bun.nanoseconds on Bun, process.hrtime.bigint on Node, performance.now on Deno. */
const clock: { name: string; now: () => number } = (() => {
  if (runtime === 'bun' && g.Bun) return { name: 'Bun.nanoseconds', now: g.Bun.nanoseconds };
  if (runtime === 'node') {
    const base = process.hrtime.bigint();
    return { name: 'process.hrtime.bigint', now: () => Number(process.hrtime.bigint() - base) };
  }
  return { name: 'performance.now', now: () => performance.now() * 1e6 };
})();
const now = clock.now;

/** Keeps results observable so no engine can drop the work. */
let sink: unknown = null;

// ---- the worker (one at a time) --------------------------------------------------------------------

type Source = 'empty' | 'unlimited';

interface Worker {
  key: string;
  transport: Transport;
  adapter: NativeFfiAdapter;
  /** Events ready to be read: frames published and not consumed (ring), or queued in Rust (ffi). */
  ready: () => number;
  /** The tasker-core module the worker was started by (path `module`; `adapter` is its adapter), else null. */
  module: TaskerCoreModule | null;
}

let current: Worker | null = null;
let discarded = 0;

/** The worker configurations bench/hot-path.ts measures with (bench/support.ts). */
function configOf(transport: Transport, source: Source): BootstrapConfig {
  return source === 'empty' ? emptyConfig(transport) : producingConfig(transport);
}

async function workerFor(transport: Transport, source: Source): Promise<Worker> {
  const key = `${transport}/${source}`;
  if (current?.key === key) return current;
  await retire();
  log(`starting a worker: ${key}`);
  const adapter = bootstrap(configOf(transport, source));
  try {
    const worker: Worker = { key, transport, adapter, ready: readyEvents(adapter), module: null };
    if (source === 'empty') checkEmptyPoll(worker);
    else await checkEvents(worker);
    current = worker;
    return worker;
  } catch (error) {
    shutdown(adapter);
    throw error;
  }
}

/** Counts FFI calls per empty poll (every native function wrapped); the ring must make none. */
function checkEmptyPoll(worker: Worker): void {
  const perPoll = ffiCallsPerEmptyPoll(worker.adapter, FFI_COUNT_POLLS);
  log(`empty poll, ${worker.transport}: ${perPoll} FFI calls per poll (counted over ${FFI_COUNT_POLLS} polls)`);
  if (worker.transport === 'ring' && perPoll !== 0) {
    throw new Error(`an empty ring poll made ${perPoll} FFI calls per poll (expected 0): refusing to measure it`);
  }
}

/** The first event has the fixture's size (serde_json's sorted keys: same bytes, fresh ids). */
async function checkEvents(worker: Worker): Promise<void> {
  await waitUntil('the first event', () => worker.ready() >= 1);
  const event = worker.adapter.pollStepEvents();
  if (event === null) throw new Error('no event although one was ready');
  worker.adapter.completeStepEvent(event.event_id, completionFor(event.step_uuid));
  worker.adapter.flushCompletions();
  log(`events, ${worker.transport}: ${JSON.stringify(event).length} bytes of JSON per event (compacted fixture: ${floorBytes.length})`);
}

/**
 * A worker on the ring started by `createNapiModule().bootstrapWorker({ configPath })` (the producing
 * configuration in a JSON file, as tasker-core's users pass theirs), events read through the module.
 */
async function moduleWorker(): Promise<Worker> {
  const key = 'module/unlimited';
  if (current?.key === key) return current;
  await retire();
  log(`starting a worker: ${key}`);
  const module = createNapiModule();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'tasker-bench-'));
    try {
      const configPath = join(dir, 'bootstrap.json');
      writeFileSync(configPath, JSON.stringify(benchConfig(producingConfig('ring'))));
      module.bootstrapWorker({ configPath });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const adapter = moduleAdapter(module);
    if (adapter === null || ringTransportOf(adapter) === null) throw new Error('the module did not start a worker on the ring');
    const worker: Worker = { key, transport: 'ring', adapter, ready: readyEvents(adapter), module };
    await checkModuleEvents(worker, module);
    current = worker;
    return worker;
  } catch (error) {
    stopModule(module);
    throw error;
  }
}

/** The module's first event: its size in tasker-core's shape, beside the fixture's. */
async function checkModuleEvents(worker: Worker, module: TaskerCoreModule): Promise<void> {
  await waitUntil('the first event', () => worker.ready() >= 1);
  const event = module.pollStepEvents();
  if (event === null) throw new Error('no event although one was ready');
  completeAll(worker.adapter, [event.eventId], [event.stepUuid], 1);
  log(`events, module: ${JSON.stringify(event).length} bytes of JSON per camelCase event (compacted fixture: ${floorBytes.length})`);
}

function stopModule(module: TaskerCoreModule): void {
  try {
    module.stopWorker();
  } finally {
    module.close();
  }
}

/** Stops the current worker after checking that every event read was completed, none refused or failed. */
async function retire(): Promise<void> {
  const worker = current;
  if (worker === null) return;
  current = null;
  log(`stopping the worker ${worker.key}`);
  try {
    await settle(worker.adapter, `worker ${worker.key}`);
  } finally {
    if (worker.module === null) shutdown(worker.adapter);
    else stopModule(worker.module);
  }
}

// ---- cases: each returns the elapsed ns of `n` iterations -------------------------------------------

async function emptyPoll(transport: Transport, n: number): Promise<number> {
  const { adapter } = await workerFor(transport, 'empty');
  const t0 = now();
  const events = emptyPollLoop(adapter, n);
  const t1 = now();
  if (events !== 0) throw new Error(`${events} empty polls returned an event`);
  return t1 - t0;
}

/** Untimed: completes the first `n` events of `ids` / `steps`, each with its own step's result. */
function completeAll(adapter: NativeFfiAdapter, ids: string[], steps: string[], n: number): void {
  completeBlock(adapter, ids, resultsFor(steps, n, []), n);
  adapter.flushCompletions();
}

/**
 * Untimed work between two timed calls of `one_event` (every path): one parse of the fixture, standing in
 * for a handler using the event. It keeps the calls apart as bench/hot-path.ts's interleaving does: polled
 * back to back (batch_1000's case), an ffi poll contends with the worker refilling its queue under the same
 * lock.
 */
function handlerStandIn(): string {
  return (JSON.parse(floorText) as FfiStepEvent).step_uuid;
}

/**
 * Where a per-event case (one_event, batch_1000) reads events from: one path's `pollStepEvents`, in its
 * event shape (`E`: snake_case from the adapter, camelCase from tasker-core's module shape).
 */
interface EventSource<E> {
  /** One poll, timed on its own by one_event. */
  poll: () => E | null;
  /** `n` events polled in one loop into `ids` / `steps`, timed as a whole by batch_1000; returns the null polls. */
  block: (n: number, ids: string[], steps: string[]) => number;
  /** The event's id and its step's uuid (read untimed). */
  idOf: (event: E) => string;
  stepOf: (event: E) => string;
  /** Events ready to be polled. */
  ready: () => number;
  /** Untimed: answers the first `n` events polled. */
  answer: (ids: string[], steps: string[], n: number) => void;
}

/** The adapter's `pollStepEvents` on a producing worker of `transport` (ring, ffi); every event read is completed. */
async function adapterSource(transport: Transport): Promise<EventSource<FfiStepEvent>> {
  const worker = await workerFor(transport, 'unlimited');
  const { adapter } = worker;
  return {
    poll: () => adapter.pollStepEvents(),
    block: (n, ids, steps) => pollBlock(adapter, n, ids, steps),
    idOf: (event) => event.event_id,
    stepOf: (event) => event.step_uuid,
    ready: worker.ready,
    answer: (ids, steps, n) => completeAll(adapter, ids, steps, n),
  };
}

/** A `pollStepEvents` of tasker-core's `NapiModule` shape (camelCase events). */
function camelSource(poll: () => NapiStepEvent | null, ready: () => number, answer: EventSource<NapiStepEvent>['answer']): EventSource<NapiStepEvent> {
  return {
    poll,
    block: (n, ids, steps) => camelPollBlock(poll, n, ids, steps),
    idOf: (event) => event.eventId,
    stepOf: (event) => event.stepUuid,
    ready,
    answer,
  };
}

/** `createNapiModule()` on a producing ring worker; every event read is completed. */
async function moduleSource(): Promise<EventSource<NapiStepEvent>> {
  const worker = await moduleWorker();
  const module = worker.module as TaskerCoreModule;
  return camelSource(module.pollStepEvents, worker.ready, (ids, steps, n) => completeAll(worker.adapter, ids, steps, n));
}

let napi: NapiReproLoad = { addon: null, reason: 'not loaded yet' };

/** The napi reproduction: always ready (it holds the event), nothing to answer; no worker runs meanwhile. */
async function napiSource(): Promise<EventSource<NapiStepEvent>> {
  const load = napi;
  if (load.addon === null) throw new Error(`the napi reproduction is not loaded: ${load.reason}`);
  await retire();
  return camelSource(
    load.addon.pollStepEvents,
    () => Number.POSITIVE_INFINITY,
    () => {},
  );
}

async function oneEvent<E>(source: EventSource<E>, n: number, overhead: number): Promise<number> {
  const { poll } = source;
  const ids: string[] = new Array(CHUNK);
  const steps: string[] = new Array(CHUNK);
  let total = 0;
  for (let done = 0; done < n; ) {
    const k = Math.min(CHUNK, n - done);
    await waitUntil(`${k} ready events`, () => source.ready() >= k);
    let got = 0;
    let nulls = 0;
    while (got < k) {
      const t0 = now();
      const event = poll();
      const t1 = now();
      if (event === null) {
        // Not counted: only polls that returned an event are.
        if (++nulls > 50_000_000) throw new Error('the producer stopped');
        continue;
      }
      total += t1 - t0 - overhead;
      ids[got] = source.idOf(event);
      steps[got++] = source.stepOf(event);
      sink = handlerStandIn();
    }
    source.answer(ids, steps, k);
    done += k;
  }
  return total;
}

function oneEventFloor(n: number, overhead: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const parsed = JSON.parse(decoder.decode(floorBytes)) as FfiStepEvent;
    const t1 = now();
    total += t1 - t0 - overhead;
    sink = parsed.event_id;
    sink = handlerStandIn();
  }
  return total;
}

async function batch<E>(source: EventSource<E>, n: number): Promise<number> {
  const ids: string[] = new Array(BLOCK);
  const steps: string[] = new Array(BLOCK);
  let total = 0;
  for (let done = 0; done < n; ) {
    await waitUntil(`${BLOCK} ready events`, () => source.ready() >= BLOCK);
    const t0 = now();
    const nulls = source.block(BLOCK, ids, steps);
    const t1 = now();
    source.answer(ids, steps, BLOCK);
    if (nulls !== 0) {
      discarded += 1;
      continue;
    }
    total += t1 - t0;
    done += 1;
  }
  return total;
}

function batchFloor(n: number): number {
  const ids: string[] = new Array(BLOCK);
  const steps: string[] = new Array(BLOCK);
  let total = 0;
  for (let b = 0; b < n; b++) {
    const t0 = now();
    floorBlock(floorBytes, BLOCK, ids, steps);
    const t1 = now();
    total += t1 - t0;
    sink = ids[BLOCK - 1];
  }
  return total;
}

async function completion(transport: Transport, n: number): Promise<number> {
  const worker = await workerFor(transport, 'unlimited');
  const { adapter } = worker;
  const ids: string[] = new Array(BLOCK);
  const steps: string[] = new Array(BLOCK);
  const results: string[] = new Array(BLOCK);
  let total = 0;
  for (let done = 0; done < n; ) {
    const k = Math.min(BLOCK, n - done);
    // Real ids: events delivered just now (untimed); room for the whole block in the completions ring; each
    // event's result, with its step_uuid, built before the clock starts.
    await deliverForCompletion(adapter, worker.ready, k, ids, steps);
    resultsFor(steps, k, results);
    const t0 = now();
    completeBlock(adapter, ids, results, k);
    const t1 = now();
    const queued = adapter.completionStats().queued;
    adapter.flushCompletions();
    if (queued !== 0) throw new Error(`${queued} completions were queued in JS memory (no room in the completions ring)`);
    total += t1 - t0;
    done += k;
  }
  return total;
}

// ---- protocol --------------------------------------------------------------------------------------

interface Request {
  case?: string;
  path?: string;
  iters?: number;
  cmd?: string;
}

const CASES: Record<string, readonly string[]> = {
  empty_poll: ['ring', 'ffi'],
  one_event: ['ring', 'ffi', 'floor', 'module', 'napi'],
  batch_1000: ['ring', 'ffi', 'floor', 'module', 'napi'],
  completion: ['ring', 'ffi'],
};

async function run(request: Request, overhead: number): Promise<number> {
  const { case: name, path, iters } = request;
  if (name === undefined || !(name in CASES)) throw new Error(`unknown case ${JSON.stringify(name)} (${Object.keys(CASES).join(', ')})`);
  if (path === undefined || !CASES[name]?.includes(path)) throw new Error(`case ${name} has no path ${JSON.stringify(path)}`);
  if (typeof iters !== 'number' || !Number.isSafeInteger(iters) || iters < 1) throw new Error(`iters must be a positive integer, not ${iters}`);
  if (path === 'floor') {
    // No worker runs while the floor is measured: it reads JS memory only.
    await retire();
    return name === 'one_event' ? oneEventFloor(iters, overhead) : batchFloor(iters);
  }
  if (path === 'module' || path === 'napi') {
    const source = path === 'module' ? await moduleSource() : await napiSource();
    return name === 'one_event' ? oneEvent(source, iters, overhead) : batch(source, iters);
  }
  const transport = path as Transport;
  switch (name) {
    case 'empty_poll':
      return emptyPoll(transport, iters);
    case 'one_event':
      return oneEvent(await adapterSource(transport), iters, overhead);
    case 'batch_1000':
      return batch(await adapterSource(transport), iters);
    default:
      return completion(transport, iters);
  }
}

const send = (message: object) => console.log(JSON.stringify(message));

async function main(): Promise<number> {
  const overhead = timerOverhead(now);
  log(`${runtimeVersion()}, clock ${clock.name}, timer overhead ${overhead.toFixed(0)} ns`);
  napi = loadNapiRepro(floorText);
  log(napi.addon === null ? `napi reproduction: not loaded: ${napi.reason}` : `napi reproduction: loaded from ${napi.path}`);
  const napiStatus = napi.addon === null ? napi.reason : 'loaded';
  send({ ready: true, runtime, version: runtimeVersion(), clock: clock.name, timer_overhead_ns: overhead, napi: napiStatus });
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let status = 0;
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let request: Request;
    try {
      request = JSON.parse(line) as Request;
    } catch {
      send({ error: `not a JSON request: ${line.slice(0, 120)}` });
      continue;
    }
    if (request.cmd === 'quit') {
      try {
        await retire();
        send({ bye: true, discarded_batches: discarded });
      } catch (error) {
        send({ error: (error as Error).message });
        status = 1;
      }
      lines.close();
      return status;
    }
    try {
      const ns = await run(request, overhead);
      send({ ns });
    } catch (error) {
      log(`error: ${(error as Error).stack ?? error}`);
      send({ error: (error as Error).message });
    }
  }
  // stdin closed without a quit: stop the worker anyway.
  try {
    await retire();
  } catch (error) {
    log(`${(error as Error).message}`);
    status = 1;
  }
  return status;
}

const status = await main();
void sink;
process.exit(status);
