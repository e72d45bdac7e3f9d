/**
 * End to end on one JS thread (issue 7): steps/s and enqueue-to-handler latency of the real
 * `libtasker_worker` (synthetic source, no store) through the real `EventPoller` (and its doorbell on the
 * ring) to a no-op handler that completes each event at once with `completeStepEvent`, for three designs:
 *
 * - `seed`: the seed's design: ffi transport (one JSON C string per `poll_step_events()` call), a 10 ms
 *   tick, one event per tick (`maxEventsPerPoll: 1`);
 * - `tasker-core`: ffi transport, 10 ms tick, up to 100 events per tick (`maxEventsPerPoll: 100`);
 * - `ring`: this project: ring transport, every ready event drained per poll, the doorbell waking the
 *   poller between ticks.
 *
 * Scenarios, one worker at a time:
 * - `burst`: N events available at once (the source's start); steps/s = N / (last handler entry - start);
 * - `rate R/s`: a steady rate (the Aeron-style sweep: 1k, 10k, 100k events/s for a few seconds); a design
 *   whose oldest undelivered event is half a second past due is stopped early; saturated = stopped early or
 *   delivered < 95% of the offered rate (its latencies are then those of the events it did deliver);
 * - `idle wake`: 50 events/s, so the worker is idle before each one (goals: ring p50 <= 50 us, p99 <= 0.5 ms;
 *   issue 21's: p50 <= 40 us, p99 <= 1.5x the bare socket's p99 of the same run).
 *
 * Beside the idle wake, two floors of the same run (issue 21), when the idle scenario runs:
 * - design `socket`: the bare doorbell socket, a Rust write (`examples/doorbell_ping`, the worker's own
 *   `Doorbell`) to the poller's own `DoorbellClient` (a `node:net` socket read with `onread`) and its
 *   callback, 50 writes a second: no ring, no pump, no parse. Latency = callback time - the write's stamp, on the same clocks as the ring's rows. Skipped, loudly,
 *   when the example is not built (`cargo build --release -p tasker-worker-core --example doorbell_ping`;
 *   `TASKER_DOORBELL_PING_BIN` overrides its path).
 * - idle CPU: the CPU share (every thread's schedstat over the window, also split by thread name) of a `TaskerWorker`
 *   child on an empty SQLite store (`bench/idle-worker.ts`, this runtime) and of a bare Node process with a
 *   10 ms timer, side by side over the same 10 s (1 s in quick mode), in 5 windows. Goal: the median over the
 *   windows of worker - timer <= 0.3 points.
 *
 * Beside the burst, the floor of its steps/s (issue 21): design `floor`, the same number of 2.7 KB fixture
 * events decoded (TextDecoder) and parsed (JSON.parse) from JS memory on this thread, no transport, no
 * worker, no handler; three blocks around the ring's burst, their median. Goal: the ring's burst steps/s
 * >= 80% of it.
 *
 * Latency = handler entry (`performance.timeOrigin + performance.now()`, us) minus the event's
 * `enqueued_at_us` (the source's `stamp_enqueued_at`: its due time under a rate, the intended time, so a slow
 * consumer cannot hide its queueing; the source's start in a burst). Both sides read the system clock
 * (Rust at the source's start, JS at process start, corrected for the runtime's `timeOrigin` error, which is
 * printed) plus a monotonic clock since; a negative latency, which would show an offset between the two, is
 * counted and reported. Latencies go into a preallocated
 * Float64Array; percentiles (nearest rank) are computed at the end. Every run checks that no event is lost:
 * delivered == enqueued (unless stopped early) and the worker accepted every completion. A warm-up run per
 * transport (not reported) compiles the hot paths first; no garbage collection is forced. CPU % is the
 * process's CPU time (JS thread, the worker's pump thread, everything) over the run's wall time.
 *
 * From ts-reader/ (the library: TASKER_LIBRARY_PATH, else target/release, built by
 * `cargo build --release -p tasker-worker-ffi`):
 *
 *   node --import tsx bench/end-to-end.ts [--quick] [--json FILE]   # full: about a minute
 *   node_modules/.bin/bun bench/end-to-end.ts --quick
 *   node_modules/.bin/deno run -A bench/end-to-end.ts --quick
 *
 * `--quick` (or BENCH_QUICK=1): tiny sizes, a smoke run for CI (about 10 s), not for figures.
 * `--legs`: the ring's idle wake leg by leg (issue 21, bench/wake-legs.ts): the bench runs itself again as a
 * child with `TASKER_WAKE_LEGS` set to a temp directory (the pump's per-event stamps; an environment variable
 * the library reads at bootstrap, which Bun's `process.env` cannot set for it), where every ring worker
 * records and the idle one's poller and adapter are instrumented too, so that run's own latencies include
 * the stamps' cost (compare with a run without `--legs`). The table (p50 / p99 per leg) is printed and
 * recorded as `wake_legs` in the JSON.
 * `--cpu-split`: V8's sampling profiler (bench/cpu-split.ts; Node and Deno, Bun skipped loudly) over the ring's
 * burst, then over one floor block of as many events: the JS thread's self time per event by group (JSON.parse,
 * decode, reader, in-flight ids, completion, poller, handler, GC, idle), printed and recorded as `cpu_split`
 * in the JSON; `--cpu-split-dir DIR` also writes the two raw `.cpuprofile` files there (created if missing). The profiler slows the
 * burst a little: take steps/s from a run without it.
 * `--designs seed,tasker-core,ring` and `--scenarios burst,rate,idle` run a subset; `--no-idle-cpu` skips
 * the idle CPU floor (20 s) of an idle run. Exit status 1 when an
 * event is lost or a completion refused (or the library cannot be loaded); 0 with SKIPPED on stderr when
 * the runtime's FFI module is missing (Node's optional koffi).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { FfiLibraryError } from '../src/errors.ts';
import { EventPoller } from '../src/events/event-poller.ts';
import { createFfiAdapter } from '../src/ffi/factory.ts';
import type { NativeFfiAdapter } from '../src/ffi/native-adapter.ts';
import type { FfiStepEvent, Transport } from '../src/protocol.ts';
import { DoorbellClient } from '../src/ring/doorbell.ts';
import { transportInternals } from '../src/ring/transport.ts';
import { detectRuntime } from '../src/runtime.ts';
import { completionFor } from './completion.ts';
import { notWork, type SplitRow, splitProfile, startCpuProfile } from './cpu-split.ts';
import { decoder, floorBlock, floorBlockOver, floorBytes, floorText, type PackedTexts, packTexts, ringTransportOf } from './support.ts';
import { JsWakeRecorder, joinLegs, type LegRow, legsTable, type RustWakeLegsFile } from './wake-legs.ts';

const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
/** `--legs`: the ring's idle wake leg by leg (see the header). */
const LEGS = process.argv.includes('--legs');
/** The worker core's switch for the pump's per-event stamps (tasker-worker-core `wake_legs`): a directory. */
const WAKE_LEGS_ENV = 'TASKER_WAKE_LEGS';
/** Where this process's ring workers write their stamps (set: `--legs` in the child that records). */
const LEGS_DIR = LEGS ? (process.env[WAKE_LEGS_ENV] ?? null) : null;

/** `--cpu-split`: the ring burst's JS thread time per event by group, beside a floor block's (bench/cpu-split.ts). */
const CPU_SPLIT = process.argv.includes('--cpu-split');

function option(name: string): string | null {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? null) : null;
}

// ---- what runs -------------------------------------------------------------------------------------

interface Design {
  name: 'seed' | 'tasker-core' | 'ring';
  transport: Transport;
  /** EventPoller's `maxEventsPerPoll` (Infinity: every ready event, up to maxInFlight). */
  maxEventsPerPoll: number;
  /** Events in the burst scenario (the seed reads 100 per second, so it gets fewer). */
  burst: number;
}

const ALL_DESIGNS: Design[] = [
  { name: 'seed', transport: 'ffi', maxEventsPerPoll: 1, burst: QUICK ? 20 : 300 },
  { name: 'tasker-core', transport: 'ffi', maxEventsPerPoll: 100, burst: QUICK ? 2_000 : 50_000 },
  { name: 'ring', transport: 'ring', maxEventsPerPoll: Number.POSITIVE_INFINITY, burst: QUICK ? 2_000 : 50_000 },
];
/** `--designs ring,seed` runs only those (the ratios need all three). */
const DESIGNS = ((list) => (list ? ALL_DESIGNS.filter((d) => list.split(',').includes(d.name)) : ALL_DESIGNS))(option('--designs'));

interface Scenario {
  name: string;
  kind: 'burst' | 'rate' | 'idle';
  /** Offered events per second (null: a burst). */
  rate: number | null;
  /** Seconds of offered events (rate scenarios). */
  seconds: number;
}

const ALL_SCENARIOS: Scenario[] = [
  { name: 'burst', kind: 'burst', rate: null, seconds: 0 },
  ...[1_000, 10_000, 100_000].map((rate): Scenario => ({ name: `rate ${rate / 1000}k/s`, kind: 'rate', rate, seconds: QUICK ? 0.4 : 4 })),
  { name: 'idle wake 50/s', kind: 'idle', rate: 50, seconds: QUICK ? 0.6 : 8 },
];
/** `--scenarios burst,rate,idle` runs only those kinds. */
const SCENARIOS = ((list) => (list ? ALL_SCENARIOS.filter((s) => list.split(',').includes(s.kind)) : ALL_SCENARIOS))(option('--scenarios'));

/** The poller's tick (the seed's 10 ms) and in-flight limit (its default). */
const TICK_MS = 10;
const MAX_IN_FLIGHT = 1000;
/** A rate run is stopped once its oldest undelivered event is this many seconds past its due time. */
const LAG_LIMIT_S = 0.5;
/** Delivered below this share of the offered rate: saturated. */
const SATURATED_BELOW = 0.95;
/** Warm-up burst per transport (not reported). */
const WARMUP_EVENTS = QUICK ? 300 : 3_000;
/** Windows of the idle-CPU measurement (the verdict is the median of worker - timer over them). */
const IDLE_CPU_WINDOWS = 5;

// ---- clocks and statistics ---------------------------------------------------------------------------

/**
 * How far the system clock is from `performance.timeOrigin + performance.now()`, in us. The runtime fixes
 * `timeOrigin` once at start, and it can be off the system clock by milliseconds (measured: 1.6 ms on Node 20
 * in one run, which put every Node latency of that run 1.6 ms high; see nodejs/node#46588 on how Node derives
 * it). Measured at the edge of a `Date.now()` tick: the system clock is exactly at the new millisecond then,
 * and the tick lies between the two `performance.now()` reads around it. Of 9 edges the one with the tightest
 * bracket is kept: a thread held between the two reads (a stalled virtual CPU, 140-260 us in 3 of ~10 runs on
 * this VM) widens the bracket and skews its midpoint, which a median of 5 let through.
 */
function timeOriginErrorUs(): number {
  let best = { error: 0, bracket: Number.POSITIVE_INFINITY };
  for (let i = 0; i < 9; i++) {
    const start = Date.now();
    let tick = start;
    let before = performance.now();
    while (tick === start) {
      before = performance.now();
      tick = Date.now();
    }
    const after = performance.now();
    if (after - before < best.bracket) best = { error: tick * 1000 - (performance.timeOrigin + (before + after) / 2) * 1000, bracket: after - before };
  }
  return best.error;
}
const originErrorUs = timeOriginErrorUs();
const originUs = performance.timeOrigin * 1000 + originErrorUs;
/** Wall-clock microseconds: the system clock at process start plus the monotonic clock since. */
const nowUs = () => originUs + performance.now() * 1000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function cpuUs(): number | null {
  try {
    const u = process.cpuUsage();
    return u.user + u.system;
  } catch {
    return null;
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}

function formatUs(us: number): string {
  if (!Number.isFinite(us)) return '-';
  if (us < 1000) return `${Math.round(us)} us`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

function formatRate(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return '-';
  return Math.round(r)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

function log(line: string): void {
  console.error(`[end-to-end ${detectRuntime()}] ${line}`);
}

// ---- one run -----------------------------------------------------------------------------------------

interface RunResult {
  design: string;
  scenario: string;
  kind: Scenario['kind'];
  offered_per_s: number | null;
  enqueued: number;
  delivered: number;
  /** Burst: delivered / (last handler entry - source start); rate: the same over the offered window. */
  steps_per_s: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  min_us: number;
  /** Latencies below zero (a clock offset between Rust's stamp and JS's clock; should be 0). */
  negative_latencies: number;
  saturated: boolean | null;
  stopped_early: boolean;
  /** Enqueued events neither delivered nor left behind by an early stop (must be 0). */
  lost: number;
  /** Completions the worker accepted (must equal delivered) and refused (must be 0). */
  completed_by_worker: number;
  refused: number;
  /** From the source's start to the first handler entry. */
  first_delivery_us: number;
  cpu_percent: number | null;
  wall_s: number;
  poller: { ticks: number; extraPolls: number; doorbellWakes: number; sleeps: number };
  /** `--legs`, ring idle wake only: the legs table and how the events joined. */
  wake_legs?: WakeLegsResult;
}

interface WakeLegsResult {
  /** Events joined (woken by their own doorbell), over which each leg's p50 / p99 is taken. */
  joined: number;
  without_doorbell: number;
  js_without_rust: number;
  rust_without_js: number;
  rust_dropped: number;
  legs: LegRow[];
}

interface RunState {
  delivered: number;
  lastUs: number;
  firstUs: number;
  firstStamp: number;
  missingStamp: number;
  done: (() => void) | null;
}

function bootstrap(design: Design, count: number, rate: number | null): NativeFfiAdapter {
  const adapter = createFfiAdapter();
  adapter.bootstrapWorker({
    namespace: 'bench',
    log_level: 'warn',
    log_stderr: false,
    transport: design.transport,
    source: { kind: 'synthetic', count, ...(rate === null ? {} : { rate_per_sec: rate }), stamp_enqueued_at: true },
  });
  return adapter;
}

/**
 * `bootstrap_worker` keeps a stopped predecessor until its replacement has started (so a failed set-up
 * changes nothing), so tearing down a run stopped with a backlog (1024 queued events on ffi: ~0.1 s measured
 * here) would land in the next run's first latencies. A throwaway worker (ffi, no events) takes the slot
 * first, untimed.
 */
function retire(): void {
  const adapter = createFfiAdapter();
  adapter.bootstrapWorker({ namespace: 'bench', log_level: 'warn', log_stderr: false, transport: 'ffi', source: { kind: 'synthetic', count: 0 } });
  try {
    adapter.stopWorker();
  } finally {
    adapter.close();
  }
}

async function runOne(design: Design, scenario: Scenario, report = true): Promise<RunResult> {
  const rate = scenario.rate;
  const count = rate === null ? (report ? design.burst : WARMUP_EVENTS) : Math.round(rate * scenario.seconds);
  const latencies = new Float64Array(count);
  const state: RunState = { delivered: 0, lastUs: 0, firstUs: 0, firstStamp: 0, missingStamp: 0, done: null };
  const finished = new Promise<void>((resolve) => {
    state.done = resolve;
  });

  // --legs: the pump's stamps (written to the legs directory when it stops) and the JS side's.
  const legs = LEGS_DIR !== null && report && design.transport === 'ring' && scenario.kind === 'idle';
  const cpu0 = cpuUs();
  const bootUs = nowUs();
  const adapter = bootstrap(design, count, rate);
  const workerId = adapter.getWorkerStatus().worker_id;
  const legsFile = legs && LEGS_DIR !== null && workerId ? join(LEGS_DIR, `wake-legs-${workerId}.json`) : null;
  const recorder = legsFile ? new JsWakeRecorder(nowUs) : null;
  const ring = recorder ? ringTransportOf(adapter) : null;
  if (recorder && ring) recorder.instrument(adapter, transportInternals(ring).reader);
  const poller = new EventPoller(adapter, TICK_MS, 100, 1000, {
    maxInFlight: MAX_IN_FLIGHT,
    maxEventsPerPoll: design.maxEventsPerPoll,
    ...(recorder ? { wakeTrace: recorder.trace } : {}),
  });
  const errors: Error[] = [];
  poller.onError((error) => errors.push(error));
  // The ring's warm-up run keeps its events (re-serialised: the same keys in the same order, compact, as
  // serde wrote them) for the floor over the burst's own events.
  const capture: string[] | null = !report && design.transport === 'ring' && rate === null && ownEvents === null ? [] : null;
  poller.onStepEvent((event: FfiStepEvent) => {
    const entry = originUs + performance.now() * 1000;
    if (capture !== null) capture.push(JSON.stringify(event));
    if (recorder) recorder.handler(event, entry);
    const i = state.delivered++;
    const stamp = event.enqueued_at_us;
    if (typeof stamp === 'number') {
      if (i < count) latencies[i] = entry - stamp;
      if (i === 0) {
        state.firstStamp = stamp;
        state.firstUs = entry;
      }
    } else state.missingStamp += 1;
    state.lastUs = entry;
    // The no-op handler's result: fixtures/completion-success.json compacted (what a handler's JSON.stringify
    // sends) naming this event's step (the worker core refuses another step's result), its uuid spliced into
    // the fixture (bench/completion.ts): one string concatenation per event, as a handler builds its result.
    adapter.completeStepEvent(event.event_id, completionFor(event.step_uuid));
    if (state.delivered === count) state.done?.();
  });
  poller.start();

  // The source's start: exact from the first stamp once an event arrived (a burst's stamp is the start; a
  // rate's first event is due one period after it), else the moment just before bootstrap.
  const sourceStart = () => (state.delivered === 0 ? bootUs : rate === null ? state.firstStamp : state.firstStamp - Math.ceil(1e9 / rate) / 1000);
  let stoppedEarly = false;
  let stopUs = 0;
  const deadlineUs = bootUs + (rate === null ? 120e6 : (scenario.seconds + 15) * 1e6);
  const watchdog = setInterval(() => {
    const t = nowUs();
    // How late the oldest undelivered event is already (its due time is known from the rate).
    const behind = rate !== null && state.delivered < count && t - (sourceStart() + ((state.delivered + 1) * 1e6) / rate) > LAG_LIMIT_S * 1e6;
    if (behind || t > deadlineUs) {
      stoppedEarly = true;
      stopUs = t;
      state.done?.();
    }
  }, 50);
  await finished;
  if (capture !== null && capture.length > 0) ownEvents = packTexts(capture);
  clearInterval(watchdog);
  const endUs = nowUs();
  const cpu1 = cpuUs();

  const pollerStats = poller.stats();
  poller.stop();
  // Every delivered event was completed synchronously; wait (untimed) until the worker has applied them all.
  let metrics = adapter.getFfiDispatchMetrics();
  const settleBy = Date.now() + 5000;
  while (!stoppedEarly && metrics.completed_count + metrics.failed_count < state.delivered && Date.now() < settleBy) {
    await sleep(5);
    metrics = adapter.getFfiDispatchMetrics();
  }
  try {
    adapter.stopWorker();
  } finally {
    adapter.close();
  }
  retire();
  const wakeLegs = legsFile && recorder ? readWakeLegs(legsFile, recorder) : undefined;
  if (errors.length > 0) throw new Error(`${design.name} / ${scenario.name}: poller errors: ${errors.map((e) => e.message).join('; ')}`);
  if (state.missingStamp > 0) throw new Error(`${design.name} / ${scenario.name}: ${state.missingStamp} events without enqueued_at_us (library too old?)`);

  const n = Math.min(state.delivered, count);
  const sorted = latencies.subarray(0, n).sort();
  let negative = 0;
  for (let i = 0; i < n && (sorted[i] as number) < 0; i++) negative += 1;
  const start = sourceStart();
  const windowUs = (stoppedEarly ? stopUs : state.lastUs) - start;
  const stepsPerS = n > 0 && windowUs > 0 ? (n / windowUs) * 1e6 : 0;
  const saturated = rate === null ? null : stoppedEarly || stepsPerS < SATURATED_BELOW * rate;
  const result: RunResult = {
    design: design.name,
    scenario: scenario.name,
    kind: scenario.kind,
    offered_per_s: rate,
    enqueued: count,
    delivered: state.delivered,
    steps_per_s: stepsPerS,
    p50_us: percentile(sorted, 0.5),
    p99_us: percentile(sorted, 0.99),
    max_us: n > 0 ? (sorted[n - 1] as number) : Number.NaN,
    min_us: n > 0 ? (sorted[0] as number) : Number.NaN,
    negative_latencies: negative,
    saturated,
    stopped_early: stoppedEarly,
    lost: stoppedEarly ? 0 : count - state.delivered,
    completed_by_worker: metrics.completed_count,
    refused: metrics.refused_completions ?? 0,
    first_delivery_us: n > 0 ? state.firstUs - start : Number.NaN,
    cpu_percent: cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / (endUs - bootUs)) * 100 : null,
    wall_s: (endUs - bootUs) / 1e6,
    poller: { ticks: pollerStats.ticks, extraPolls: pollerStats.extraPolls, doorbellWakes: pollerStats.doorbellWakes, sleeps: pollerStats.sleeps },
    ...(wakeLegs ? { wake_legs: wakeLegs } : {}),
  };
  if (report) {
    log(
      `${design.name.padEnd(11)} ${scenario.name.padEnd(14)} ${formatRate(stepsPerS).padStart(7)} steps/s  p50 ${formatUs(result.p50_us)}  p99 ${formatUs(result.p99_us)}  ` +
        `max ${formatUs(result.max_us)}  ${state.delivered}/${count} delivered${stoppedEarly ? ' (stopped early: saturated)' : ''}  ${result.wall_s.toFixed(1)} s`,
    );
  }
  const problems: string[] = [];
  if (result.lost !== 0) problems.push(`${result.lost} events lost (delivered ${state.delivered} of ${count})`);
  if (state.delivered > count) problems.push(`${state.delivered - count} events delivered twice`);
  if (!stoppedEarly && result.completed_by_worker !== state.delivered)
    problems.push(`the worker accepted ${result.completed_by_worker} of ${state.delivered} completions`);
  if (result.refused !== 0) problems.push(`${result.refused} completions refused`);
  if (problems.length > 0) throw new Error(`${design.name} / ${scenario.name}: ${problems.join('; ')}`);
  return result;
}

/** The pump's stamps (written when it stopped) joined with the JS side's. */
function readWakeLegs(file: string, recorder: JsWakeRecorder): WakeLegsResult {
  if (!existsSync(file)) {
    throw new Error(
      `--legs: the worker wrote no ${file}: the library predates the diagnostic, or this runtime did not pass ${WAKE_LEGS_ENV} to it (set it in the environment before starting)`,
    );
  }
  const rust = JSON.parse(readFileSync(file, 'utf8')) as RustWakeLegsFile;
  const join = joinLegs(rust.legs, recorder.records);
  if (join.jsWithoutRust > 0) throw new Error(`--legs: ${join.jsWithoutRust} delivered events have no record of the pump's`);
  return {
    joined: join.joined.length,
    without_doorbell: join.withoutDoorbell,
    js_without_rust: join.jsWithoutRust,
    rust_without_js: join.rustWithoutJs,
    rust_dropped: rust.dropped,
    legs: legsTable(join.joined),
  };
}

// ---- report ------------------------------------------------------------------------------------------

function runtimeVersion(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  return `node ${process.versions.node}`;
}

function table(results: RunResult[]): string {
  const lines = [
    '| design | scenario | offered/s | events | delivered steps/s | p50 | p99 | max | saturated | CPU % |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  for (const r of results) {
    const events = r.stopped_early ? `${r.delivered} of ${r.enqueued}` : `${r.delivered}`;
    const saturated = r.saturated === null ? '-' : r.saturated ? (r.stopped_early ? 'yes (stopped early)' : 'yes') : 'no';
    const cpu = r.cpu_percent === null ? '-' : `${Math.round(r.cpu_percent)}`;
    lines.push(
      `| ${r.design} | ${r.scenario} | ${formatRate(r.offered_per_s)} | ${events} | ${formatRate(r.steps_per_s)} | ${formatUs(r.p50_us)} | ${formatUs(r.p99_us)} | ${formatUs(r.max_us)} | ${saturated} | ${cpu} |`,
    );
  }
  return lines.join('\n');
}

interface Ratio {
  scenario: string;
  steps_ring_over_seed: number;
  steps_ring_over_tasker_core: number;
  p50_ring_over_seed: number;
  p50_ring_over_tasker_core: number;
}

function ratios(results: RunResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const scenario of SCENARIOS) {
    const of = (design: string) => results.find((r) => r.design === design && r.scenario === scenario.name);
    const ring = of('ring');
    const seed = of('seed');
    const core = of('tasker-core');
    if (!ring || !seed || !core) continue;
    out.push({
      scenario: scenario.name,
      steps_ring_over_seed: ring.steps_per_s / seed.steps_per_s,
      steps_ring_over_tasker_core: ring.steps_per_s / core.steps_per_s,
      // A burst's latency is its queueing (about N / rate / 2): comparable only between bursts of one size.
      p50_ring_over_seed: ring.enqueued === seed.enqueued ? ring.p50_us / seed.p50_us : Number.NaN,
      p50_ring_over_tasker_core: ring.enqueued === core.enqueued ? ring.p50_us / core.p50_us : Number.NaN,
    });
  }
  return out;
}

function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return '-';
  return `${r < 0.01 ? r.toPrecision(2) : r.toFixed(r < 10 ? 2 : 1)}x`;
}

interface Goal {
  goal: string;
  /** The measured value: a latency, or a ratio (`value_ratio`). */
  value_us?: number;
  value_ratio?: number;
  met: boolean;
}

function goals(results: RunResult[]): Goal[] {
  const out: Goal[] = [];
  const idle = results.find((r) => r.design === 'ring' && r.kind === 'idle');
  if (idle) {
    out.push(
      { goal: 'ring idle wake p50 <= 50 us', value_us: idle.p50_us, met: idle.p50_us <= 50 },
      { goal: 'ring idle wake p99 <= 0.5 ms', value_us: idle.p99_us, met: idle.p99_us <= 500 },
      { goal: 'ring idle wake p50 <= 40 us (issue 21)', value_us: idle.p50_us, met: idle.p50_us <= 40 },
    );
  }
  const floor = results.find((r) => r.design === 'floor' && r.kind === 'burst');
  const burst = results.find((r) => r.design === 'ring' && r.kind === 'burst');
  if (floor && burst) {
    const share = burst.steps_per_s / floor.steps_per_s;
    out.push({ goal: "ring burst steps/s >= 80% of the floor's (decode + parse) (issue 21)", value_ratio: share, met: share >= 0.8 });
    const own = results.find((r) => r.design === 'floor-own' && r.kind === 'burst');
    if (own) {
      const ownShare = burst.steps_per_s / own.steps_per_s;
      out.push({ goal: "(cause) ring burst steps/s against the floor over the burst's own events", value_ratio: ownShare, met: ownShare >= 0.8 });
    }
  }
  const socket = results.find((r) => r.design === 'socket' && r.kind === 'idle');
  if (socket && idle) {
    const limit = 1.5 * socket.p99_us;
    out.push({ goal: `ring idle wake p99 <= 1.5x the bare socket's p99 (${formatUs(limit)}) (issue 21)`, value_us: idle.p99_us, met: idle.p99_us <= limit });
    const cold = results.find((r) => r.design === 'cold-floor' && r.kind === 'idle');
    if (cold) {
      const floor = socket.p50_us + cold.p50_us;
      out.push({
        goal: `(cause) ring idle wake p50 <= the bare socket's p50 + a cold decode + parse's p50 (${formatUs(floor)}): what this machine needs`,
        value_us: idle.p50_us,
        met: idle.p50_us <= floor,
      });
    }
  }
  return out;
}

// ---- the burst's floor: decode + parse on this thread (issue 21) -----------------------------------------

/** The ring warm-up's events, captured once (`runOne`), for the floor over the burst's own events. */
let ownEvents: PackedTexts | null = null;

/**
 * Events per second for `n` events decoded and parsed from JS memory, one block, no transport: the fixture
 * (issue 21's floor), or with `own` the burst's own events (distinct texts, cycled).
 */
function floorRate(n: number, own = false): number {
  const ids: string[] = new Array(n);
  const steps: string[] = new Array(n);
  const t0 = performance.now();
  if (own && ownEvents !== null) floorBlockOver(ownEvents, n, ids, steps);
  else floorBlock(floorBytes, n, ids, steps);
  const ms = performance.now() - t0;
  if (ids[n - 1] === undefined) throw new Error('floor: the last event was not parsed');
  return n / (ms / 1000);
}

/** A floor's row beside the burst: the median of its blocks (one before, one between, one after the runs). */
function floorResult(scenario: Scenario, n: number, rates: number[], own = false): RunResult {
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  const what = own ? `the burst's own events (${ownEvents?.ends.length ?? 0} distinct, cycled)` : 'fixture events';
  log(`floor (decode + parse of ${n} ${what}, ${rates.length} blocks): ${rates.map((r) => formatRate(r)).join(', ')} events/s`);
  return {
    design: own ? 'floor-own' : 'floor',
    scenario: scenario.name,
    kind: 'burst',
    offered_per_s: null,
    enqueued: n,
    delivered: n,
    steps_per_s: median,
    p50_us: Number.NaN,
    p99_us: Number.NaN,
    max_us: Number.NaN,
    min_us: Number.NaN,
    negative_latencies: 0,
    saturated: null,
    stopped_early: false,
    lost: 0,
    completed_by_worker: 0,
    refused: 0,
    first_delivery_us: Number.NaN,
    cpu_percent: null,
    wall_s: n / median,
    poller: { ticks: 0, extraPolls: 0, doorbellWakes: 0, sleeps: 0 },
  };
}

// ---- floors of the idle wake: the bare doorbell socket, idle CPU (issue 21) ---------------------------------

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const packageDir = fileURLToPath(new URL('../', import.meta.url));

/** Lines of a child's stdout, one callback per line. */
function onLines(child: ChildProcess, onLine: (line: string) => void): void {
  let pending = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** A floor row of the idle scenario (no worker): `sorted` latencies in us, `cpu0` the process's CPU at `began`. */
function floorRow(design: string, scenario: Scenario, rate: number, count: number, sorted: Float64Array, began: number, cpu0: number | null): RunResult {
  const delivered = sorted.length;
  let negative = 0;
  for (let i = 0; i < delivered && (sorted[i] as number) < 0; i++) negative += 1;
  const endUs = nowUs();
  const cpu1 = cpuUs();
  return {
    design,
    scenario: scenario.name,
    kind: 'idle',
    offered_per_s: rate,
    enqueued: count,
    delivered,
    steps_per_s: Number.NaN,
    p50_us: percentile(sorted, 0.5),
    p99_us: percentile(sorted, 0.99),
    max_us: delivered > 0 ? (sorted[delivered - 1] as number) : Number.NaN,
    min_us: delivered > 0 ? (sorted[0] as number) : Number.NaN,
    negative_latencies: negative,
    saturated: null,
    stopped_early: false,
    lost: count - delivered,
    completed_by_worker: 0,
    refused: 0,
    first_delivery_us: Number.NaN,
    cpu_percent: cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / (endUs - began)) * 100 : null,
    wall_s: (endUs - began) / 1e6,
    poller: { ticks: 0, extraPolls: 0, doorbellWakes: 0, sleeps: 0 },
  };
}

/** The bare doorbell socket's row (design `socket`), or null (loudly) when `examples/doorbell_ping` is not built. */
async function runSocket(scenario: Scenario): Promise<RunResult | null> {
  const bin = process.env.TASKER_DOORBELL_PING_BIN ?? join(repoRoot, 'target/release/examples/doorbell_ping');
  if (!existsSync(bin)) {
    log(`SKIPPED the bare socket row: ${bin} is not built (cargo build --release -p tasker-worker-core --example doorbell_ping)`);
    return null;
  }
  const rate = scenario.rate ?? 50;
  const count = Math.round(rate * scenario.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'tasker-doorbell-ping-'));
  const received = new Float64Array(count);
  let bytes = 0;
  let stamps: number[] | null = null;
  const cpu0 = cpuUs();
  const began = nowUs();
  try {
    const child = spawn(bin, [join(dir, 'bell.sock'), String(count), String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const listening = new Promise<string>((resolve, reject) => {
      onLines(child, (line) => {
        const message = JSON.parse(line) as { listening?: string; stamps_us?: number[] };
        if (message.listening) resolve(message.listening);
        if (message.stamps_us) stamps = message.stamps_us;
      });
      child.once('exit', (code) => reject(new Error(`doorbell_ping exited (${code}) before listening`)));
    });
    // The poller's own doorbell client, so that this floor reads the way the ring's wake does.
    const client = new DoorbellClient(
      await listening,
      (read) => {
        const t = nowUs();
        // The first byte is the warm-up ring; coalesced rings (a slow callback) share one receive time.
        for (let i = 0; i < read; i++, bytes++) if (bytes >= 1 && bytes <= count) received[bytes - 1] = t;
      },
      (error) => log(`the bare socket's client failed: ${(error as Error).message}`),
    );
    const code = await exited(child);
    client.close();
    if (code !== 0 || stamps === null) throw new Error(`doorbell_ping failed (exit ${code})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const sent = stamps as unknown as number[];
  const delivered = Math.min(Math.max(bytes - 1, 0), count);
  const latencies = new Float64Array(delivered);
  for (let i = 0; i < delivered; i++) latencies[i] = (received[i] as number) - (sent[i] as number);
  const result = floorRow('socket', scenario, rate, count, latencies.sort(), began, cpu0);
  log(
    `socket      ${scenario.name.padEnd(14)}    bare Rust write -> JS callback  p50 ${formatUs(result.p50_us)}  p99 ${formatUs(result.p99_us)}  max ${formatUs(result.max_us)}  ${result.delivered}/${count} rings`,
  );
  if (result.lost !== 0) throw new Error(`socket: ${result.lost} of ${count} rings never reached the callback`);
  return result;
}

/**
 * The cold floor under the idle wake (design `cold-floor`): with no ring, no worker and no socket, one event
 * decoded and parsed on this thread at the idle scenario's rate, each after the same idle gap the ring's wake
 * sees (the burst's own events cycled when captured, else the fixture). Its p50 plus the bare socket's p50 is
 * what this machine needs for a wake that ends in a parsed event; the ring's idle wake is judged against it.
 */
async function runColdFloor(scenario: Scenario): Promise<RunResult> {
  const rate = scenario.rate ?? 50;
  const count = Math.round(rate * scenario.seconds);
  const texts = ownEvents ?? packTexts([floorText]);
  const times: number[] = [];
  const began = nowUs();
  const cpu0 = cpuUs();
  for (let i = 0; i < count; i++) {
    await sleep(1000 / rate);
    const j = i % texts.ends.length;
    const bytes = texts.bytes.slice(j === 0 ? 0 : (texts.ends[j - 1] as number), texts.ends[j]); // a fresh copy, as a frame is
    const t0 = performance.now();
    const event = JSON.parse(decoder.decode(bytes)) as FfiStepEvent;
    const us = (performance.now() - t0) * 1000;
    if (typeof event.event_id === 'string') times.push(us);
  }
  const result = floorRow('cold-floor', scenario, rate, count, Float64Array.from(times).sort(), began, cpu0);
  log(
    `cold-floor  ${scenario.name.padEnd(14)}    decode + parse after idle         p50 ${formatUs(result.p50_us)}  p99 ${formatUs(result.p99_us)}  ${result.delivered}/${count} events`,
  );
  return result;
}

/**
 * CPU seconds of a live process's threads by name (`comm`), from `/proc/PID/task/TID/schedstat` (nanoseconds
 * on the CPU; `/proc/PID/stat`'s utime + stime count 10 ms ticks, too coarse for 1% over 10 s).
 */
function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      byName.set(name, (byName.get(name) ?? 0) + ns / 1e9);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return byName;
}

/** Resolves once `child` printed a line `ready`. */
function readyLine(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    onLines(child, (line) => line.trim() === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`idle child exited (${code}) before it was ready`)));
  });
}

/** A process's CPU over a window: % of one core, in total and by thread name. */
interface CpuShare {
  total: number;
  threads: Record<string, number>;
}

/** One child's CPU over a measured period: its whole share and each window's total. */
interface ChildCpu {
  whole: CpuShare;
  perWindow: number[];
}

function shareBetween(c0: Map<string, number>, c1: Map<string, number>, wall: number): CpuShare {
  const threads: Record<string, number> = {};
  let total = 0;
  for (const [name, cpu] of c1) {
    const share = ((cpu - (c0.get(name) ?? 0)) / wall) * 100;
    threads[name] = Math.round(share * 1000) / 1000;
    total += share;
  }
  return { total, threads };
}

/**
 * CPU shares of live `children` side by side over the same `windows` consecutive windows of `seconds` each:
 * the host's load moves a bare timer's share 0.5-2.0% between runs minutes apart on this VM, so processes
 * measured one after the other compare the host's moments, not the processes. Returns each child's share
 * over the whole period and per window. Ends the children.
 */
async function cpuShares(children: ChildProcess[], windows: number, seconds: number): Promise<ChildCpu[]> {
  await sleep(1000); // start-up work settles
  const read = () => ({ at: performance.now(), cpu: children.map((child) => threadCpuSeconds(child.pid as number)) });
  const marks = [read()];
  for (let w = 0; w < windows; w++) {
    await sleep(seconds * 1000);
    marks.push(read());
  }
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map(exited));
  const first = marks[0] as ReturnType<typeof read>;
  const last = marks[windows] as ReturnType<typeof read>;
  return children.map((_, i) => ({
    whole: shareBetween(first.cpu[i] as Map<string, number>, last.cpu[i] as Map<string, number>, (last.at - first.at) / 1000),
    perWindow: marks.slice(1).map((m, w) => {
      const from = marks[w] as ReturnType<typeof read>;
      return shareBetween(from.cpu[i] as Map<string, number>, m.cpu[i] as Map<string, number>, (m.at - from.at) / 1000).total;
    }),
  }));
}

interface IdleCpu {
  seconds: number;
  /** A TaskerWorker on an empty SQLite store (this runtime), % of one core. */
  worker_percent: number;
  /** A bare Node process with a 10 ms timer, % of one core, over the same time. */
  timer_percent: number;
  /** The period's windows, and worker - timer in each (points of a core, sorted); the verdict is their median. */
  windows: number;
  excess_points_median: number;
  excess_points: number[];
  /** The worker's share by thread name (Node's main and V8 threads are all `node`). */
  worker_threads: Record<string, number>;
  goal: string;
  met: boolean;
}

/**
 * `entry` as one ESM file for Node, bundled by esbuild (tsup's bundler, so what a user runs from `dist/`).
 * Node runs TypeScript through tsx's loader, a second isolate on a thread of its own: that alone cost 0.7
 * points of idle CPU beside a bare timer (1.63% against 0.93%, per-thread schedstat, issue 21), which a
 * worker run from built JS never pays. The bundle sits in the package (`node_modules/.cache`) so the library
 * lookup, which walks up from the module to the package, finds this repository's build.
 */
async function nodeBundle(entry: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = join(packageDir, 'node_modules/.cache/tasker-bench', `${basename(entry, '.ts')}.mjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'es2022',
    external: ['koffi', 'bun:ffi'],
    logLevel: 'error',
  });
  return outfile;
}

async function idleCpu(): Promise<IdleCpu | null> {
  if (!existsSync('/proc/self/stat')) {
    log('SKIPPED idle CPU: no /proc (Linux only)');
    return null;
  }
  const seconds = QUICK ? 1 : 10;
  const dir = mkdtempSync(join(tmpdir(), 'tasker-idle-cpu-'));
  try {
    const script = join(packageDir, 'bench/idle-worker.ts');
    const url = `sqlite:${join(dir, 'empty.db')}`;
    const runtime = detectRuntime();
    const [command, ...args] =
      runtime === 'bun'
        ? [process.execPath, script, url]
        : runtime === 'deno'
          ? [process.execPath, 'run', '-A', script, url]
          : [process.execPath, await nodeBundle(script), url];
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'TASKER_DATABASE_URL') env[k] = v;
    const worker = spawn(command as string, args, { cwd: packageDir, env, stdio: ['ignore', 'pipe', 'inherit'] });
    await readyLine(worker);
    const timer = spawn('node', ['-e', 'setInterval(() => {}, 10)'], { stdio: 'ignore' });
    const [measured, bare] = (await cpuShares([worker, timer], IDLE_CPU_WINDOWS, seconds / IDLE_CPU_WINDOWS)) as [ChildCpu, ChildCpu];
    const excess = measured.perWindow.map((share, w) => share - (bare.perWindow[w] as number)).sort((x, y) => x - y);
    const medianExcess = percentile(Float64Array.from(excess), 0.5);
    const workerPercent = measured.whole.total;
    const timerPercent = bare.whole.total;
    const threads = measured.whole.threads;
    const result: IdleCpu = {
      seconds,
      worker_percent: workerPercent,
      timer_percent: timerPercent,
      windows: IDLE_CPU_WINDOWS,
      excess_points_median: medianExcess,
      excess_points: excess,
      worker_threads: threads,
      goal: 'idle TaskerWorker CPU <= a bare Node 10 ms timer + 0.3 points (issue 21)',
      met: medianExcess <= 0.3,
    };
    const split = Object.entries(threads)
      .filter(([, share]) => share >= 0.01)
      .sort((a, b) => b[1] - a[1])
      .map(([name, share]) => `${name} ${share.toFixed(2)}`)
      .join(', ');
    log(
      `idle CPU over ${seconds} s: TaskerWorker on an empty SQLite store ${workerPercent.toFixed(2)}% (${split}), bare Node 10 ms timer ${timerPercent.toFixed(2)}% (side by side, same ${seconds} s); worker - timer per ${seconds / IDLE_CPU_WINDOWS} s window, median ${medianExcess.toFixed(2)} points`,
    );
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- main --------------------------------------------------------------------------------------------

/** `--legs` without the variable: runs this bench again as a child whose environment has it. */
async function rerunWithLegs(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tasker-wake-legs-'));
  try {
    const script = fileURLToPath(import.meta.url);
    const args = process.argv.slice(process.argv.indexOf(script) >= 0 ? process.argv.indexOf(script) + 1 : 2);
    const runtime = detectRuntime();
    const command = runtime === 'bun' ? [script, ...args] : runtime === 'deno' ? ['run', '-A', script, ...args] : ['--import', 'tsx', script, ...args];
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    env[WAKE_LEGS_ENV] = dir;
    const child = spawn(process.execPath, command, { cwd: packageDir, env, stdio: 'inherit' });
    return (await exited(child)) ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `--cpu-split`'s result: the ring burst's and one floor block's self time by group, per event. */
type CpuSplit =
  | { burst: { total_ms: number; events: number; rows: SplitRow[] }; floor: { total_ms: number; events: number; rows: SplitRow[] } }
  | { unavailable: string };
let cpuSplit: CpuSplit | null = null;

/** Stops the burst's profiler, then profiles one floor block of the same size (not counted in the floor's row). */
async function splitRun(profiler: ReturnType<typeof startCpuProfile>, delivered: number, n: number): Promise<CpuSplit> {
  if ('unavailable' in profiler) {
    console.error(`end-to-end: --cpu-split SKIPPED on ${runtimeVersion()}: ${profiler.unavailable}`);
    return { unavailable: profiler.unavailable };
  }
  const burstProfile = await profiler.stop();
  const floorProfiler = startCpuProfile();
  if ('unavailable' in floorProfiler) return { unavailable: floorProfiler.unavailable };
  floorRate(n);
  const floorProfile = await floorProfiler.stop();
  const dir = option('--cpu-split-dir');
  if (dir !== null) {
    // The raw profiles, for Chrome DevTools or a closer look than the groups.
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `burst-${detectRuntime()}.cpuprofile`), JSON.stringify(burstProfile));
    writeFileSync(join(dir, `floor-${detectRuntime()}.cpuprofile`), JSON.stringify(floorProfile));
  }
  return { burst: { ...splitProfile(burstProfile, delivered), events: delivered }, floor: { ...splitProfile(floorProfile, n), events: n } };
}

function cpuSplitTable(split: CpuSplit): string[] {
  if ('unavailable' in split) return [`CPU split: skipped (${split.unavailable}).`];
  const groups = [...new Set([...split.burst.rows, ...split.floor.rows].map((r) => r.group))];
  const of = (rows: SplitRow[], group: string) => rows.find((r) => r.group === group)?.us_per_event ?? 0;
  const sum = (rows: SplitRow[]) => rows.reduce((s, r) => s + (notWork(r.group) ? 0 : r.us_per_event), 0);
  return [
    `The JS thread per event by group (--cpu-split: V8's sampling profiler, 100 us; a builtin's time is its caller's self time): the ring burst (${split.burst.events} events, ${split.burst.total_ms.toFixed(0)} ms profiled) beside one floor block (${split.floor.events} fixture events, ${split.floor.total_ms.toFixed(0)} ms).`,
    '',
    '| group | ring burst, us/event | floor, us/event |',
    '|---|---:|---:|',
    ...groups.map((g) => `| ${g} | ${of(split.burst.rows, g).toFixed(2)} | ${of(split.floor.rows, g).toFixed(2)} |`),
    `| sum (without idle and the profiler) | ${sum(split.burst.rows).toFixed(2)} | ${sum(split.floor.rows).toFixed(2)} |`,
  ];
}

async function main(): Promise<void> {
  if (LEGS && LEGS_DIR === null) process.exit(await rerunWithLegs());
  const jsonPath = option('--json');
  try {
    createFfiAdapter().close();
  } catch (error) {
    if (error instanceof FfiLibraryError && (error.code === 'FFI_MODULE_MISSING' || error.code === 'UNSUPPORTED_RUNTIME')) {
      // This runtime cannot load native code here (e.g. Node without its optional koffi): skip, not fail.
      console.error(`end-to-end: SKIPPED on ${runtimeVersion()}: ${error.message}`);
      process.exit(0);
    }
    if (error instanceof FfiLibraryError) {
      console.error(`end-to-end: cannot load libtasker_worker: ${error.message}`);
      console.error("build it with 'cargo build --release -p tasker-worker-ffi' (from the repository root) or set TASKER_LIBRARY_PATH");
      process.exit(1);
    }
    throw error;
  }
  const began = Date.now();
  log(`${runtimeVersion()}, ${QUICK ? 'quick (smoke run, not for figures)' : 'full'}; timeOrigin corrected by ${originErrorUs.toFixed(0)} us; warming up`);
  for (const design of DESIGNS.filter((d) => d.name !== 'seed')) await runOne(design, { name: 'warm-up', kind: 'burst', rate: null, seconds: 0 }, false);

  const results: RunResult[] = [];
  for (const scenario of SCENARIOS) {
    const ring = DESIGNS.find((d) => d.name === 'ring');
    const floors: number[] = [];
    const ownFloors: number[] = [];
    const floorBlocks = (n: number) => {
      floors.push(floorRate(n));
      if (ownEvents !== null) ownFloors.push(floorRate(n, true));
    };
    if (scenario.kind === 'burst' && ring) floorBlocks(ring.burst);
    for (const design of DESIGNS) {
      const split = CPU_SPLIT && scenario.kind === 'burst' && ring !== undefined && design === ring;
      const profiler = split ? startCpuProfile() : null;
      const result = await runOne(design, scenario);
      results.push(result);
      if (profiler !== null) cpuSplit = await splitRun(profiler, result.delivered, design.burst);
      if (scenario.kind === 'burst' && design === ring) floorBlocks(ring.burst);
    }
    if (ring && floors.length > 0) {
      floorBlocks(ring.burst);
      results.push(floorResult(scenario, ring.burst, floors));
      if (ownFloors.length > 0) results.push(floorResult(scenario, ring.burst, ownFloors, true));
    }
    if (scenario.kind === 'idle') {
      const socket = await runSocket(scenario);
      if (socket) results.push(socket);
      results.push(await runColdFloor(scenario));
    }
  }
  const idleCpuResult = SCENARIOS.some((s) => s.kind === 'idle') && !process.argv.includes('--no-idle-cpu') ? await idleCpu() : null;
  const seconds = (Date.now() - began) / 1000;

  const rs = ratios(results);
  const gs = goals(results);
  const out: string[] = [];
  out.push(`## End to end, one JS thread: ${runtimeVersion()}${QUICK ? ' (QUICK: smoke sizes, not figures)' : ''}`, '');
  out.push(
    `Synthetic source (2.7 KB events, no store), no-op handler completing at once; seed = ffi, ${TICK_MS} ms tick, 1 event/tick; ` +
      `tasker-core = ffi, ${TICK_MS} ms tick, 100 events/tick; ring = ring transport, drain per poll, doorbell. ` +
      `Latency = handler entry - enqueued_at (due time). ${cpus().length} CPUs; ${seconds.toFixed(0)} s.`,
    '',
  );
  out.push(table(results), '');
  out.push('| scenario | steps/s ring / seed | steps/s ring / tasker-core | p50 ring / seed | p50 ring / tasker-core |', '|---|---:|---:|---:|---:|');
  for (const r of rs) {
    out.push(
      `| ${r.scenario} | ${formatRatio(r.steps_ring_over_seed)} | ${formatRatio(r.steps_ring_over_tasker_core)} | ${formatRatio(r.p50_ring_over_seed)} | ${formatRatio(r.p50_ring_over_tasker_core)} |`,
    );
  }
  out.push('');
  for (const r of results) {
    if (!r.wake_legs) continue;
    const w = r.wake_legs;
    out.push(
      `Idle wake leg by leg (${r.design}, ${r.scenario}; --legs: stamps on): ${w.joined} events woken by their own doorbell` +
        ` (${w.without_doorbell} found without one); each leg's own p50 / p99, so they do not add up.`,
      '',
      '| leg | p50 | p99 |',
      '|---|---:|---:|',
      ...w.legs.map((l) => `| ${l.leg} | ${l.p50_us.toFixed(1)} us | ${l.p99_us.toFixed(1)} us |`),
      '',
    );
  }
  if (cpuSplit !== null) out.push(...cpuSplitTable(cpuSplit), '');
  for (const g of gs)
    out.push(
      `- goal ${g.goal}: ${g.met ? 'met' : 'NOT met'} (${g.value_ratio === undefined ? formatUs(g.value_us ?? Number.NaN) : `${(g.value_ratio * 100).toFixed(0)}%`})`,
    );
  if (idleCpuResult) {
    out.push(
      `- goal ${idleCpuResult.goal}: ${idleCpuResult.met ? 'met' : 'NOT met'} (worker ${idleCpuResult.worker_percent.toFixed(2)}%, timer ${idleCpuResult.timer_percent.toFixed(2)}%, side by side over the same ${idleCpuResult.seconds} s; median excess over ${idleCpuResult.windows} windows ${idleCpuResult.excess_points_median.toFixed(2)} points)`,
    );
  }
  const negative = results.reduce((s, r) => s + r.negative_latencies, 0);
  if (negative > 0) out.push(`- WARNING: ${negative} negative latencies: Rust's and JS's clocks disagree; treat small latencies with care`);
  console.log(out.join('\n'));

  if (jsonPath) {
    const report = {
      schema: 'tasker-ring/bench-end-to-end/1',
      runtime: runtimeVersion(),
      quick: QUICK,
      time_origin_error_us: originErrorUs,
      cpus: cpus().length,
      seconds,
      designs: DESIGNS.map((d) => ({ ...d, maxEventsPerPoll: Number.isFinite(d.maxEventsPerPoll) ? d.maxEventsPerPoll : null })),
      results,
      ratios: rs,
      goals: gs,
      idle_cpu: idleCpuResult,
      wake_legs: results.find((r) => r.wake_legs)?.wake_legs ?? null,
      cpu_split: cpuSplit,
    };
    writeFileSync(jsonPath, `${JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    log(`wrote ${jsonPath}`);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`end-to-end: ${(error as Error).stack ?? error}`);
    process.exit(1);
  },
);
