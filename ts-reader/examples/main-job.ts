/**
 * The main job: TS step handlers fed by the step store through the ring, end to end.
 *
 * 1. Looks at the store (`tasker-ring store status`): when no step is left unfinished it enqueues a new
 *    workload (`--steps`, default 100 000: half linear, half diamond tasks, 4 steps each); otherwise it
 *    resumes the unfinished one.
 * 2. Runs `--workers` worker processes (this one and K-1 children of the same runtime), each a
 *    `TaskerWorker` with the example handlers over its own region, all claiming from the one store.
 * 3. Shows live progress (steps/s, in flight, ring fill, done / total) until every step is complete or in
 *    error, then prints a summary table (steps/s, claim-to-persisted p50/p99, failures, retries) and checks
 *    every finished task's result against the reference math (`tasker-ring store verify`).
 *
 * Ctrl-C stops every worker gracefully (handlers finish, results are persisted, unread claims are given
 * back); running the same command again resumes. Exit status: 0 all complete and verified, 1 an error (or a
 * result that does not match the reference math), 2 bad usage, 3 finished with steps in error, 130 stopped
 * before the end. Usage (scripts/main-job builds everything first):
 *   node --import tsx examples/main-job.ts [--database-url URL] [--steps N] [--workers K] [--transport ring|ffi]
 *   bun examples/main-job.ts ...      deno run -A examples/main-job.ts ...
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  createFfiAdapter,
  detectRuntime,
  type FfiDispatchMetrics,
  type RingAwareAdapter,
  type StoreSourceMetrics,
  TaskerWorker,
  type Transport,
} from '../src/index.ts';
import { registerExampleHandlers } from './handlers.ts';

const USAGE = `usage: main-job [--database-url URL] [--steps N] [--workers K] [--transport ring|ffi] [--concurrency C] [--json]
  --database-url URL  sqlite:PATH, a file path, or postgres://USER:PASS@HOST:PORT/DB
                      (default: $TASKER_DATABASE_URL, else tasker.db in the working directory)
  --steps N           steps to enqueue when no unfinished work is left (default 100000; 4 per task)
  --workers K         worker processes sharing the store (default 1)
  --transport T       ring (default) or ffi (the seed's per-poll call, the baseline)
  --concurrency C     handlers running at once per worker (default 200)
  --json              print the summary as one JSON object on stdout
  --completion-timeout-ms MS   a handler's result is due within this (default 30000)
  --visibility-margin-ms MS    a claim's deadline is the completion timeout plus this (default 10000):
                               how long a dead worker's steps wait before another worker takes them
  --child             run one worker only: no enqueue, no children, summary JSON on stdout
  --without-handler NAME       leave this handler class unregistered (tests of a missing handler)
  --handler-delay-ms MS        each handler waits this long first (simulated I/O; default 0)
  --source S          store (default) or synthetic: the worker core fabricates --steps copies of the 2.7 KB
                      fixture event (a linear step) instead of claiming from a store; nothing is persisted.
                      The transport's and the handlers' own ceiling, for comparison with a store's rate.`;

interface Options {
  databaseUrl: string;
  steps: number;
  workers: number;
  transport: Transport;
  concurrency: number;
  json: boolean;
  child: boolean;
  completionTimeoutMs: number;
  visibilityMarginMs: number;
  withoutHandler: string[];
  handlerDelayMs: number;
  source: 'store' | 'synthetic';
}

/** What one worker process did (children print it as JSON on stdout). */
interface WorkerSummary {
  worker_id: string;
  runtime: string;
  transport: Transport;
  backend: string;
  elapsed_s: number;
  completed: number;
  retried: number;
  failed: number;
  refused: number;
  released: number;
  store_errors: number;
  handler_failures: number;
  steps_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Where the store thread's time went (see `StoreSourceMetrics.time`). */
  store_time: StoreSourceMetrics['time'] | null;
  interrupted: boolean;
}

class UsageError extends Error {}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got '${text}'`);
  return n;
}

function parseCli(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        'database-url': { type: 'string' },
        steps: { type: 'string' },
        workers: { type: 'string' },
        transport: { type: 'string' },
        concurrency: { type: 'string' },
        json: { type: 'boolean' },
        child: { type: 'boolean' },
        'completion-timeout-ms': { type: 'string' },
        'visibility-margin-ms': { type: 'string' },
        'without-handler': { type: 'string', multiple: true },
        'handler-delay-ms': { type: 'string' },
        source: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function parseOptions(argv: string[]): Options {
  const values = parseCli(argv);
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const transport = values.transport ?? 'ring';
  if (transport !== 'ring' && transport !== 'ffi') throw new UsageError(`--transport must be ring or ffi, got '${transport}'`);
  const envUrl = process.env.TASKER_DATABASE_URL?.trim();
  const source = values.source ?? 'store';
  if (source !== 'store' && source !== 'synthetic') throw new UsageError(`--source must be store or synthetic, got '${source}'`);
  if (source === 'synthetic' && (values.workers ?? '1') !== '1') throw new UsageError('--source synthetic runs one worker (--workers 1)');
  return {
    source,
    databaseUrl: values['database-url'] ?? (envUrl ? envUrl : 'tasker.db'),
    steps: positiveInt('steps', values.steps, 100_000),
    workers: positiveInt('workers', values.workers, 1),
    transport,
    concurrency: positiveInt('concurrency', values.concurrency, 200),
    json: values.json ?? false,
    child: values.child ?? false,
    completionTimeoutMs: positiveInt('completion-timeout-ms', values['completion-timeout-ms'], 30_000),
    visibilityMarginMs: positiveInt('visibility-margin-ms', values['visibility-margin-ms'], 10_000),
    withoutHandler: values['without-handler'] ?? [],
    handlerDelayMs: values['handler-delay-ms'] === undefined ? 0 : positiveInt('handler-delay-ms', values['handler-delay-ms'], 0),
  };
}

// ---- the tasker-ring CLI (store status / enqueue / verify) ----

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function cliPath(): string {
  const path = process.env.TASKER_RING_BIN ?? `${repoRoot}target/release/tasker-ring`;
  if (!existsSync(path)) throw new Error(`the tasker-ring CLI is not built at ${path}: run scripts/main-job (it builds it), or set TASKER_RING_BIN`);
  return path;
}

/** Runs a store subcommand; stdout is returned, stderr passes through (the enqueue progress bar). */
function store(args: string[], databaseUrl: string): { code: number; stdout: string } {
  const r = spawnSync(cliPath(), ['store', ...args, '--database-url', databaseUrl], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, stdout: r.stdout };
}

interface StoreStatusJson {
  backend: string;
  steps: { total: number; pending: number; ready: number; claimed: number; complete: number; error: number };
}

function storeStatus(databaseUrl: string): StoreStatusJson {
  const r = store(['status', '--json'], databaseUrl);
  if (r.code !== 0) throw new Error(`tasker-ring store status failed (exit ${r.code}); see the message above`);
  return JSON.parse(r.stdout) as StoreStatusJson;
}

function enqueue(databaseUrl: string, steps: number): void {
  const tasks = Math.ceil(steps / 4);
  const linear = Math.ceil(tasks / 2);
  for (const [template, count] of [
    ['linear', linear],
    ['diamond', tasks - linear],
  ] as const) {
    if (count === 0) continue;
    const r = store(['enqueue', '--template', template, '--count', String(count)], databaseUrl);
    if (r.code !== 0) throw new Error(`tasker-ring store enqueue failed (exit ${r.code}); see the message above`);
    process.stderr.write(r.stdout);
  }
}

// ---- one worker ----

const unfinished = (s: { pending: number; ready: number; claimed: number }) => s.pending + s.ready + s.claimed;

/** Progress of the whole store, as one line. */
function progressLine(m: FfiDispatchMetrics, rate: number): string {
  const s = m.source?.steps;
  const done = s ? s.complete + s.error : 0;
  const total = s ? done + unfinished(s) : 0;
  const pct = total > 0 ? ((100 * done) / total).toFixed(1) : '0.0';
  return (
    `${rate.toFixed(0).padStart(6)} steps/s (this worker) | in flight ${String(m.in_flight_count + m.pending_count).padStart(5)} | ` +
    `ring ${(100 * (m.events_ring_fill ?? 0)).toFixed(1).padStart(5)}% | done ${done} / ${total} (${pct}%)` +
    (s && s.error > 0 ? ` | errors ${s.error}` : '') +
    (m.source && m.source.store_errors > 0 ? ` | store errors ${m.source.store_errors}: ${m.source.last_error ?? ''}` : '')
  );
}

async function runWorker(opts: Options, showProgress: boolean): Promise<WorkerSummary> {
  const adapter: RingAwareAdapter = createFfiAdapter();
  const worker = registerExampleHandlers(
    new TaskerWorker({
      adapter,
      concurrency: opts.concurrency,
      handlerTimeoutMs: Math.max(1, opts.completionTimeoutMs - 500),
      bootstrap: {
        namespace: 'default',
        log_level: 'warn',
        transport: opts.transport,
        completion_timeout_ms: opts.completionTimeoutMs,
        // Step counts every 100 ms (one small query): the end of the run is seen within ~0.15 s, not ~1.25 s,
        // which matters to the steps/s of runs of a few seconds.
        source:
          opts.source === 'synthetic'
            ? { kind: 'synthetic', count: opts.steps }
            : { kind: 'store', database_url: opts.databaseUrl, visibility_margin_ms: opts.visibilityMarginMs, status_interval_ms: 100 },
      },
      logger: (r) => {
        if (r.level === 'error' || r.level === 'warn') process.stderr.write(`\n[worker ${r.level}] ${r.message} ${JSON.stringify(r.fields)}\n`);
      },
    }),
    opts.withoutHandler,
    opts.handlerDelayMs,
  );
  const started = performance.now();
  const boot = await worker.start();
  const tty = showProgress && process.stderr.isTTY === true;
  let lastDone = -1;
  let lastAt = started;
  let lastPrint = 0;
  let rate = 0;
  let finished = false;
  try {
    while (worker.isRunning) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const m = adapter.getFfiDispatchMetrics();
      const s = m.source?.steps;
      const now = performance.now();
      // This worker's rate, from its own persisted results (updated on every batch; the store-wide counts
      // are refreshed only once a second, too coarse for a rate).
      const src = m.source;
      if (src) {
        const done = src.completed + src.retried + src.failed;
        if (lastDone >= 0 && now - lastAt >= 1000) {
          rate = ((done - lastDone) * 1000) / (now - lastAt);
          lastDone = done;
          lastAt = now;
        } else if (lastDone < 0) {
          lastDone = done;
          lastAt = now;
        }
      }
      if (opts.source === 'synthetic' && m.completed_count + m.failed_count >= opts.steps) {
        finished = true;
        break;
      }
      if (s) {
        // Done when the whole store has nothing unfinished and this worker holds and owes nothing.
        if (unfinished(s) === 0 && m.source?.held === 0 && m.source.buffered === 0 && s.age_ms < 200) {
          finished = true;
          break;
        }
      }
      if (showProgress && (tty || now - lastPrint >= 5000)) {
        lastPrint = now;
        process.stderr.write(tty ? `\r${progressLine(m, rate)}\x1b[K` : `${progressLine(m, rate)}\n`);
      }
    }
  } finally {
    await worker.stop();
  }
  if (tty) process.stderr.write('\n');
  const elapsed = (performance.now() - started) / 1000;
  const m = adapter.getFfiDispatchMetrics();
  adapter.close();
  const src = m.source;
  const stats = worker.stats();
  // Without a store (the synthetic source) the worker core's own counts are the steps handled.
  const completed = src ? src.completed : m.completed_count;
  const failed = src ? src.failed : m.failed_count;
  const handled = completed + (src?.retried ?? 0) + failed;
  return {
    worker_id: boot.worker_id,
    runtime: detectRuntime(),
    transport: opts.transport,
    backend: src?.backend ?? opts.source,
    elapsed_s: elapsed,
    completed,
    retried: src?.retried ?? 0,
    failed,
    refused: src?.refused ?? 0,
    released: src?.released ?? 0,
    store_errors: src?.store_errors ?? 0,
    handler_failures: stats.failed,
    steps_per_s: handled / elapsed,
    p50_ms: src?.latency.p50_ms ?? 0,
    p99_ms: src?.latency.p99_ms ?? 0,
    max_ms: src?.latency.max_ms ?? 0,
    store_time: src?.time ?? null,
    interrupted: !finished,
  };
}

// ---- the job ----

function childArgs(opts: Options): { command: string; args: string[] } {
  const script = fileURLToPath(import.meta.url);
  const own = [
    '--child',
    '--database-url',
    opts.databaseUrl,
    '--transport',
    opts.transport,
    '--concurrency',
    String(opts.concurrency),
    '--completion-timeout-ms',
    String(opts.completionTimeoutMs),
    '--visibility-margin-ms',
    String(opts.visibilityMarginMs),
    ...opts.withoutHandler.flatMap((h) => ['--without-handler', h]),
    ...(opts.handlerDelayMs > 0 ? ['--handler-delay-ms', String(opts.handlerDelayMs)] : []),
  ];
  const runtime = detectRuntime();
  if (runtime === 'deno') return { command: process.execPath, args: ['run', '-A', script, ...own] };
  if (runtime === 'bun') return { command: process.execPath, args: [script, ...own] };
  return { command: process.execPath, args: [...process.execArgv, script, ...own] };
}

function startChild(opts: Options, index: number): Promise<WorkerSummary> {
  const { command, args } = childArgs(opts);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as WorkerSummary);
      } catch {
        reject(new Error(`worker process ${index} exited with code ${code} without a summary`));
      }
    });
  });
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

function printSummary(workers: WorkerSummary[], wallS: number): void {
  const fmt = (n: number, d = 0) => n.toFixed(d);
  const rows = [['worker', 'runtime', 'transport', 'steps', 'steps/s', 'p50 ms', 'p99 ms', 'max ms', 'retried', 'failed', 'refused']];
  for (const w of workers) {
    rows.push([
      w.worker_id,
      w.runtime,
      w.transport,
      fmt(w.completed + w.retried + w.failed),
      fmt(w.steps_per_s),
      fmt(w.p50_ms, 1),
      fmt(w.p99_ms, 1),
      fmt(w.max_ms, 1),
      fmt(w.retried),
      fmt(w.failed),
      fmt(w.refused),
    ]);
  }
  if (workers.length > 1) {
    const steps = workers.reduce((a, w) => a + w.completed + w.retried + w.failed, 0);
    const sum = (k: 'retried' | 'failed' | 'refused') => fmt(workers.reduce((a, w) => a + w[k], 0));
    rows.push(['all', '', '', fmt(steps), fmt(steps / wallS), '', '', '', sum('retried'), sum('failed'), sum('refused')]);
  }
  console.log(table(rows));
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.child) {
    const summary = await runWorker(opts, false);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  }
  if (opts.source === 'synthetic') {
    const own = await runWorker(opts, !opts.json);
    if (opts.json) console.log(JSON.stringify({ workers: [own], wall_s: own.elapsed_s, store: null, interrupted: own.interrupted, verify: null }));
    else printSummary([own], own.elapsed_s);
    return own.interrupted ? 130 : 0;
  }
  const before = storeStatus(opts.databaseUrl);
  const left = unfinished(before.steps);
  if (left === 0) {
    process.stderr.write(`store ${opts.databaseUrl} (${before.backend}): no unfinished steps; enqueuing ${opts.steps} steps\n`);
    enqueue(opts.databaseUrl, opts.steps);
  } else {
    process.stderr.write(`store ${opts.databaseUrl} (${before.backend}): resuming ${left} unfinished steps of ${before.steps.total}\n`);
  }
  const wallStart = performance.now();
  const children = Array.from({ length: opts.workers - 1 }, (_, i) => startChild(opts, i + 1));
  const own = await runWorker(opts, !opts.json);
  const settled = await Promise.allSettled(children);
  const wallS = (performance.now() - wallStart) / 1000;
  const workers = [own];
  for (const s of settled) {
    if (s.status === 'fulfilled') workers.push(s.value);
    else process.stderr.write(`${s.reason instanceof Error ? s.reason.message : String(s.reason)}\n`);
  }
  const after = storeStatus(opts.databaseUrl);
  const interrupted = workers.some((w) => w.interrupted) || unfinished(after.steps) > 0;
  let verify: { checked: number; mismatches: number } | null = null;
  if (!interrupted) {
    const r = store(['verify', '--json'], opts.databaseUrl);
    verify = JSON.parse(r.stdout) as { checked: number; mismatches: number };
  }
  if (opts.json) {
    console.log(JSON.stringify({ workers, wall_s: wallS, store: after.steps, interrupted, verify }));
  } else {
    printSummary(workers, wallS);
    const s = after.steps;
    console.log(`store: ${s.complete} complete, ${s.error} in error, ${unfinished(s)} unfinished of ${s.total} steps; wall time ${wallS.toFixed(1)} s`);
    if (verify) console.log(`results: ${verify.checked} finished tasks checked against the reference math, ${verify.mismatches} mismatches`);
    if (interrupted) console.log('stopped before the end: run the same command again to resume');
    else if (s.error > 0) console.log(`${s.error} steps ended in error: see their last_error in the store; \`tasker-ring store retry\` runs them again`);
  }
  if (settled.some((s) => s.status === 'rejected')) return 1;
  if (verify && verify.mismatches > 0) return 1;
  if (interrupted) return 130;
  // Finished, but some steps ended in error (a permanent failure, a missing handler, attempts used up).
  return after.steps.error > 0 ? 3 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`main-job: ${error.message}\n${USAGE}\n`);
    else process.stderr.write(`main-job: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
