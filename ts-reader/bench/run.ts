/**
 * Runs bench/hot-path.ts under Node (tsx), Bun and Deno, one after the other, and prints one markdown
 * report: rows = case, columns = runtime, then the ratios, the goals and the breakdown of the ring path.
 *
 *   npm run bench                       # builds libtasker_worker (cargo, release) unless TASKER_LIBRARY_PATH is set
 *   npm run bench -- --quick            # a fifth of the iterations (a smoke run, not for figures)
 *   npm run bench -- --runtimes node,deno --json /tmp/bench.json
 *
 * Options: --quick, --runtimes LIST, --json FILE (the raw reports), --no-build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { libraryFileName } from '../src/ffi/library-path.ts';
import { type CaseResult, formatNs, formatRatio, type RuntimeReport } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, '..');
const repoRoot = resolve(packageDir, '..');
const bin = (name: string) => join(packageDir, 'node_modules', '.bin', name);

const RUNTIMES: Record<string, { command: string; args: string[] }> = {
  node: { command: process.execPath, args: ['--import', 'tsx', 'bench/hot-path.ts'] },
  bun: { command: existsSync(bin('bun')) ? bin('bun') : 'bun', args: ['bench/hot-path.ts'] },
  deno: { command: existsSync(bin('deno')) ? bin('deno') : 'deno', args: ['run', '-A', 'bench/hot-path.ts'] },
};

function option(name: string): string | null {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? null) : null;
}

function libraryPath(): string {
  if (process.env.TASKER_LIBRARY_PATH) return process.env.TASKER_LIBRARY_PATH;
  if (!process.argv.includes('--no-build')) {
    console.error('building libtasker_worker: cargo build --release -p tasker-worker-ffi');
    const built = spawnSync('cargo', ['build', '--release', '-p', 'tasker-worker-ffi'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
    if (built.status !== 0) throw new Error('cargo build failed (set TASKER_LIBRARY_PATH to use a library you built)');
  }
  const target = process.env.CARGO_TARGET_DIR ?? join(repoRoot, 'target');
  const path = join(target, 'release', libraryFileName());
  if (!existsSync(path)) throw new Error(`${path} is missing: build it or set TASKER_LIBRARY_PATH`);
  return path;
}

function run(name: string, env: NodeJS.ProcessEnv): RuntimeReport {
  const runtime = RUNTIMES[name];
  if (!runtime) throw new Error(`unknown runtime '${name}' (node, bun, deno)`);
  console.error(`--- ${name}: ${[runtime.command, ...runtime.args].join(' ')}`);
  const child = spawnSync(runtime.command, runtime.args, {
    cwd: packageDir,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 300_000,
  });
  if (child.error) throw child.error;
  const line = child.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (child.status !== 0 || !line) throw new Error(`${name} exited with ${child.status ?? child.signal}: no report`);
  return JSON.parse(line.slice('BENCH_JSON '.length)) as RuntimeReport;
}

// ---- report ----------------------------------------------------------------------------------------

type Row = [label: string, value: (r: RuntimeReport) => string];

function table(title: string, reports: RuntimeReport[], rows: Row[]): string {
  const head = `| ${title} | ${reports.map((r) => `${r.runtime} ${r.version}`).join(' | ')} |`;
  const rule = `|---|${reports.map(() => '---:').join('|')}|`;
  return [head, rule, ...rows.map(([label, value]) => `| ${label} | ${reports.map(value).join(' | ')} |`)].join('\n');
}

const c = (r: RuntimeReport, key: string): CaseResult | undefined => r.cases[key];
const ns = (key: string) => (r: RuntimeReport) => formatNs(c(r, key)?.ns ?? Number.NaN);
const ratioOf = (a: string, b: string) => (r: RuntimeReport) => formatRatio((c(r, a)?.ns ?? Number.NaN) / (c(r, b)?.ns ?? Number.NaN));
const paired = (key: string) => (r: RuntimeReport) => {
  const p = r.paired[key];
  return p ? `${formatRatio(p.value)} (${p.p25.toFixed(2)}-${p.p75.toFixed(2)})` : 'n/a';
};
const pairedNs = (key: string) => (r: RuntimeReport) => {
  const p = r.paired[key];
  return p ? `${formatNs(p.value)} (${Math.round(p.p25)}..${Math.round(p.p75)})` : 'n/a';
};
const layerDiff = (key: string) => (r: RuntimeReport) => formatNs(r.breakdown[key] ?? Number.NaN);
const spread = (key: string) => (r: RuntimeReport) => {
  const x = c(r, key);
  if (!x) return 'n/a';
  const skipped = x.skipped ? `, ${x.skipped} skipped` : '';
  return `${Math.round(x.p25)}..${Math.round(x.p75)} (n=${x.samples}${skipped})`;
};
const percentOver = (key: string) => (r: RuntimeReport) => {
  const p = r.paired[key];
  return p ? `${((p.value - 1) * 100).toFixed(1)}%` : 'n/a';
};

function report(reports: RuntimeReport[], command: string): string {
  const out: string[] = [];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  out.push(`Machine: ${cpus().length} x ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${new Date().toISOString().slice(0, 10)}.`);
  out.push(`Command: \`${command}\`; ${reports.map((r) => `${r.runtime} ${r.seconds.toFixed(0)} s`).join(', ')}.`);
  out.push('');
  out.push(
    table('case (ns per op, median)', reports, [
      ['empty poll, ring `pollStepEvents()` (no event; one Atomics.load)', ns('empty.ring')],
      ['empty poll, ffi `pollStepEvents()` (one FFI call returning NULL)', ns('empty.ffi')],
      ['one 2.7 KB event, ring `pollStepEvents()` (decode + parse)', ns('one.ring')],
      ['one event, ffi `pollStepEvents()` (FFI call + parse)', ns('one.ffi')],
      ['one event, floor: TextDecoder + JSON.parse from JS memory', ns('one.floor.ring')],
      ['batch of 1000, ring, per event', ns('batch.ring')],
      ['batch of 1000, ffi, per event', ns('batch.ffi')],
      ['batch of 1000, floor (fixture bytes), per event', ns('batch.floor')],
      ["batch of 1000, floor over the ring's own bytes (1000 captured events)", ns('batch.floor.captured')],
      ['completion write, ring `completeStepEvent` (encodeInto into the ring)', ns('complete.ring')],
      ['completion write, ffi `completeStepEvent` (FFI call)', ns('complete.ffi')],
      ['completion reference: id + encodeInto into JS memory', ns('complete.floor')],
    ]),
  );
  out.push('');
  out.push(
    table('ratio', reports, [
      ['ring / floor, one event (median of per-chunk ratios, IQR)', paired('one.ring/floor')],
      ['ring / floor, batch (median of per-round ratios, IQR)', paired('batch.ring/floor')],
      ["ring / floor over the ring's own bytes, batch", paired('batch.ring/floor.captured')],
      ['what-if, batch: transport.nextEvent (no adapter bookkeeping) / floor', paired('batch.ring.nextEvent/floor')],
      ['ring / ffi, empty poll', ratioOf('empty.ring', 'empty.ffi')],
      ['ring / ffi, one event', ratioOf('one.ring', 'one.ffi')],
      ['ring / ffi, batch', ratioOf('batch.ring', 'batch.ffi')],
      ['ring / ffi, completion write', ratioOf('complete.ring', 'complete.ffi')],
    ]),
  );
  out.push('');
  const emptyGoal = (r: RuntimeReport) => {
    const v = c(r, 'empty.ring')?.ns ?? Number.NaN;
    const calls = r.checks['empty poll ring: FFI calls per poll'];
    return `${v <= 10 ? 'met' : 'NOT met'}: ${formatNs(v)}, ${calls} FFI calls/poll`;
  };
  const floorGoal = (key: string) => (r: RuntimeReport) => {
    const p = r.paired[key];
    if (!p) return 'n/a';
    return `${p.value <= 1.05 ? 'met' : 'NOT met'}: +${((p.value - 1) * 100).toFixed(1)}%`;
  };
  out.push(
    table('goal', reports, [
      ['empty poll <= 10 ns, no FFI call', emptyGoal],
      ['ring <= 5% over the floor, one event', floorGoal('one.ring/floor')],
      ['ring <= 5% over the floor, batch', floorGoal('batch.ring/floor')],
    ]),
  );
  out.push('');
  out.push(
    table('where the ring time goes (ns per event)', reports, [
      ['ring over the floor, interleaved per call: pollStepEvents - floor', layerDiff('ring - floor')],
      ["... over the ring's own bytes: pollStepEvents - floor.captured", layerDiff('ring - floor.captured')],
      ['adapter bookkeeping, interleaved: pollStepEvents - transport.nextEvent', layerDiff('adapter: ring - ring.nextEvent')],
      ['adapter bookkeeping, batch: pollStepEvents - transport.nextEvent (paired, IQR)', pairedNs('diff:batch ring - ring.nextEvent')],
      ['adapter bookkeeping alone, block: inFlight.set(id, Date.now())', ns('whatif.bookkeeping')],
      ['... of which the Date.now() per event (block, paired)', pairedNs('diff:clock per event')],
      ['shared memory vs JS memory, same code: ring.nextEvent - local.nextEvent', layerDiff('shared memory: ring.nextEvent - local.nextEvent')],
      ['... decode only: ring reader.next - local reader.next', layerDiff('shared memory, decode only: ring.readerNext - local.readerNext')],
      ['reader code, interleaved: reader.next - TextDecoder.decode (JS memory)', layerDiff('reader code, decode only: local.readerNext - decode.captured')],
      ['reader code, block: reader.next - TextDecoder.decode (paired)', pairedNs('diff:reader.next - decode')],
      ['lean reader what-if, block: leanReader.next - TextDecoder.decode (paired)', pairedNs('diff:leanReader.next - decode')],
      ['gain of the lean reader, block: reader.next - leanReader.next (paired)', pairedNs('diff:lean reader gain')],
      ["floor bytes: the ring's own bytes - fixture bytes, interleaved", layerDiff('event bytes: floor.captured - floor')],
      ['for scale: JSON.parse of one event, interleaved', layerDiff('JSON.parse alone: floor.captured - decode.captured')],
    ]),
  );
  out.push('');
  out.push(
    table('empty ring poll, layer by layer (ns per call, plain loop)', reports, [
      ['adapter.pollStepEvents()', ns('empty.ring')],
      ['RingTransport.nextEvent()', ns('empty.ring.nextEvent')],
      ['RingReader.next()', ns('empty.ring.readerNext')],
      ['RingReader.hasPending() (one Atomics.load)', ns('empty.ring.hasPending')],
      ['what-if: the same check with a plain load as a hint', ns('empty.ring.plainHint')],
      ['Atomics.load on a JS Int32Array', ns('empty.atomicsLoad')],
      ['the loop itself, per iteration', ns('empty.loop')],
      ['cross-check, mitata: ring adapter.pollStepEvents()', ns('empty.ring.mitata')],
      ['cross-check, mitata: ffi adapter.pollStepEvents()', ns('empty.ffi.mitata')],
    ]),
  );
  out.push('');
  out.push(
    table('spread: p25..p75 ns (samples)', reports, [
      ['one event, ring (per call)', spread('one.ring')],
      ['one event, floor (per call)', spread('one.floor.ring')],
      ['one event, ffi (per call)', spread('one.ffi')],
      ['batch, ring (per round)', spread('batch.ring')],
      ['batch, floor (per round)', spread('batch.floor')],
      ['batch, ffi (per round)', spread('batch.ffi')],
      ['completion, ring (per round)', spread('complete.ring')],
      ['completion, ffi (per round)', spread('complete.ffi')],
      ['ring over floor, one event', percentOver('one.ring/floor')],
    ]),
  );
  out.push('');
  const checks = new Set(reports.flatMap((r) => Object.keys(r.checks)));
  out.push(
    table(
      'check',
      reports,
      [...checks].map((key) => [key, (r: RuntimeReport) => String(r.checks[key] ?? 'n/a')] as Row),
    ),
  );
  out.push('');
  out.push(`Timer overhead subtracted from per-call timings: ${reports.map((r) => `${r.runtime} ${r.timerOverheadNs.toFixed(0)} ns`).join(', ')}.`);
  return out.join('\n');
}

function main(): void {
  const names = (option('--runtimes') ?? 'node,bun,deno').split(',').map((s) => s.trim());
  const env: NodeJS.ProcessEnv = { ...process.env, TASKER_LIBRARY_PATH: libraryPath() };
  if (process.argv.includes('--quick')) env.BENCH_QUICK = '1';
  const started = Date.now();
  const reports = names.map((name) => run(name, env));
  const json = option('--json');
  if (json) writeFileSync(json, `${JSON.stringify(reports, null, 2)}\n`);
  const args = process.argv.slice(2).filter((a) => a !== '--json' && a !== json);
  console.log(report(reports, `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`));
  console.error(`--- done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main();
