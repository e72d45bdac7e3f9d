/**
 * Where the JS thread's time goes per event (issue 21): V8's sampling CPU profiler (`node:inspector`, on Node
 * and Deno; Bun's module returns an empty profile, so Bun is skipped, loudly) around one timed run, its
 * samples' self time grouped by what the function does, in microseconds per event.
 *
 * A builtin (JSON.parse, Map.prototype.set) has no node of its own in the profile: its time is its caller's
 * self time. So `nextEvent`'s self time is JSON.parse (and its few checks); the in-flight ids' own
 * functions (`InFlightIds.set`, `take`) have their nodes unless an engine inlines them into their caller.
 */
import { Session } from 'node:inspector';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
/** The part of a `.cpuprofile` read here. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Everything else, with the run's own set-up and stop (the FFI calls that start and stop the worker, the settle loop). */
const OTHER = "other (with the run's set-up and stop)";
/** The profiler's own stop call (Deno samples it): reported, not counted as the run's work. */
export const PROFILER = 'the profiler itself (not counted)';
/** A group that is not the run's work: waiting, or the profiler. */
export const notWork = (group: string): boolean => group.startsWith('idle') || group === PROFILER;

/** One group: its name, and whether a function (name, source url) belongs to it. First match wins. */
const GROUPS: [string, (fn: string, url: string) => boolean][] = [
  [
    'JSON.parse (nextEvent / the floor loop self)',
    (fn, url) => (fn === 'nextEvent' && url.endsWith('ring/transport.ts')) || /^floor(Block|BlockOver|Rate)$/.test(fn),
  ],
  ['TextDecoder.decode', (fn) => fn === 'decode' || fn === 'decodeUTF8' || fn.startsWith('op_encoding_decode')],
  ['reader: frame checks, claim, release', (_fn, url) => /ring\/(reader|claim|sequence|layout)\.ts$/.test(url)],
  ['in-flight ids (pollStepEvents self, InFlightIds set and take)', (fn, url) => fn === 'pollStepEvents' || url.endsWith('ffi/in-flight.ts')],
  [
    'completion: bookkeeping, id check, encodeInto, publish',
    (fn, url) => /ring\/(writer|transport)\.ts$/.test(url) || fn === 'completeStepEvent' || fn === 'encodeInto' || fn.startsWith('op_encoding_encode'),
  ],
  ['poller, timers, microtasks', (fn, url) => /events\/|timers|async_hooks|task_queues/.test(url) || /^op_(immediate|timer|run_microtasks)/.test(fn)],
  ['bench handler (clock, latency, result text)', (fn, url) => url.includes('/bench/') || fn === 'now' || fn === 'op_now'],
  ['garbage collector', (fn) => fn === '(garbage collector)'],
  ['native outside JS (program)', (fn) => fn === '(program)'],
  ['idle (waiting for events)', (fn) => fn === '(idle)'],
  [PROFILER, (_fn, url) => url.includes('inspector')],
];

export interface SplitRow {
  group: string;
  us_per_event: number;
  share: number;
}

/** The profile's self time by group, per event (`events` delivered in the profiled run), largest first. */
export function splitProfile(profile: CpuProfile, events: number): { total_ms: number; rows: SplitRow[] } {
  const groupOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url } = node.callFrame;
    groupOf.set(node.id, GROUPS.find(([, test]) => test(functionName, url))?.[0] ?? OTHER);
  }
  const us = new Map<string, number>();
  let total = 0;
  // A sample stands for the time until the next one (timeDeltas[i + 1]).
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const group = groupOf.get(profile.samples[i] as number) ?? OTHER;
    us.set(group, (us.get(group) ?? 0) + dt);
    total += dt;
  }
  const rows = [...us]
    .map(([group, t]) => ({ group, us_per_event: events > 0 ? t / events : Number.NaN, share: total > 0 ? t / total : 0 }))
    .sort((a, b) => b.us_per_event - a.us_per_event);
  return { total_ms: total / 1000, rows };
}

/** A started profiler; `stop()` returns the profile. Null (with the reason) where the runtime has none. */
export function startCpuProfile(intervalUs = 100): { stop: () => Promise<CpuProfile> } | { unavailable: string } {
  if ((globalThis as { Bun?: unknown }).Bun !== undefined) return { unavailable: "Bun's node:inspector returns no samples (use bun --cpu-prof)" };
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) =>
      session.post(method, params, (error: Error | null, result?: unknown) => (error ? reject(error) : resolve(result as T))),
    );
  // Inspector calls on one's own thread answer synchronously on Node and Deno; a failure surfaces at stop().
  const started = Promise.all([post('Profiler.enable'), post('Profiler.setSamplingInterval', { interval: intervalUs }), post('Profiler.start')]);
  started.catch(() => {}); // observed by stop(), not an unhandled rejection meanwhile
  return {
    stop: async () => {
      await started;
      const { profile } = await post<{ profile: CpuProfile }>('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}
