/**
 * The idle wake, leg by leg (issue 21), for bench/end-to-end.ts `--legs`: where the microseconds between an
 * event's due time and its handler's start go.
 *
 * Rust legs come from the ring pump's opt-in diagnostic (`TASKER_WAKE_LEGS`, read at bootstrap: the pump
 * writes, when it stops, per event: claimed from the source, frame published, doorbell write begun and
 * returned).
 * JS legs come from `JsWakeRecorder`: the poller's `wakeTrace` hook (doorbell callback) and wrappers the
 * bench puts around this one adapter's `pollStepEvents` and its ring reader's `next` (poll reads, frame
 * decoded, parsed), plus the handler's entry. Both sides stamp epoch microseconds (system clock at start +
 * monotonic since), like `enqueued_at_us`; `joinLegs` joins them by event id.
 */
import type { WakeTrace } from '../src/events/event-poller.ts';
import type { FfiStepEvent } from '../src/protocol.ts';

/** One event's Rust legs (epoch us; null: not reached, e.g. no doorbell because the reader was awake). */
export interface RustWakeLeg {
  event_id: string;
  claimed_us: number | null;
  published_us: number | null;
  /** The doorbell write began (the reader's callback can come before it returns: `doorbell_us`). */
  ring_begins_us: number | null;
  doorbell_us: number | null;
}

/** What the pump's diagnostic writes. */
export interface RustWakeLegsFile {
  worker_id: string;
  dropped: number;
  legs: RustWakeLeg[];
}

/** One event's JS legs (epoch us). */
export interface JsWakeLeg {
  event_id: string;
  /** The event's `enqueued_at_us` (its due time under a rate). */
  due_us: number;
  /** The latest doorbell callback before this event's poll read it (null: none yet). */
  doorbell_cb_us: number | null;
  /** `pollStepEvents` entered for this event. */
  poll_us: number;
  /** The ring reader returned the frame, its payload decoded to text. */
  decoded_us: number;
  /** `pollStepEvents` returned the parsed event. */
  parsed_us: number;
  handler_us: number;
}

/** Every point of one event, in order, joined. */
export interface JoinedWake {
  event_id: string;
  due: number;
  claimed: number;
  published: number;
  ring: number;
  rung: number;
  callback: number;
  poll: number;
  decoded: number;
  parsed: number;
  handler: number;
}

type Point = Exclude<keyof JoinedWake, 'event_id'>;

/**
 * The legs: first the chain, each from one point to the next, from due to handler start; then the whole
 * wake; then, aside, the doorbell write itself (begun -> returned), which may end after the reader's
 * callback ran (the woken thread can take the writer's CPU), so it is not a link of the chain.
 */
export const WAKE_LEGS: readonly { name: string; from: Point; to: Point; chain: boolean }[] = [
  { name: 'due -> pump claims it', from: 'due', to: 'claimed', chain: true },
  { name: 'claimed -> frame published', from: 'claimed', to: 'published', chain: true },
  { name: 'published -> doorbell write begins', from: 'published', to: 'ring', chain: true },
  { name: 'doorbell write begins -> JS doorbell callback', from: 'ring', to: 'callback', chain: true },
  { name: 'JS callback -> poll reads the ring', from: 'callback', to: 'poll', chain: true },
  { name: 'poll -> frame decoded (text)', from: 'poll', to: 'decoded', chain: true },
  { name: 'decoded -> parsed (JSON.parse)', from: 'decoded', to: 'parsed', chain: true },
  { name: 'parsed -> handler start', from: 'parsed', to: 'handler', chain: true },
  { name: 'due -> handler start (whole wake)', from: 'due', to: 'handler', chain: false },
  { name: '(aside) doorbell write, begun -> returned', from: 'ring', to: 'rung', chain: false },
];

export interface JoinResult {
  /** Events woken by their own doorbell: every point known. */
  joined: JoinedWake[];
  /** JS events with no Rust record (must be 0), Rust records never delivered in JS (e.g. stopped early). */
  jsWithoutRust: number;
  rustWithoutJs: number;
  /** Events the reader found without a doorbell for them (awake already, or its regular tick). */
  withoutDoorbell: number;
}

/**
 * Joins the two sides by event id. An event counts as woken by its doorbell when the pump rang for it and
 * the reader's latest doorbell callback before its poll came after the event was published (an older
 * callback belongs to an earlier event; the tick or a poll already under way found this one).
 */
export function joinLegs(rust: readonly RustWakeLeg[], js: readonly JsWakeLeg[]): JoinResult {
  const byId = new Map<string, RustWakeLeg>();
  for (const r of rust) byId.set(r.event_id, r);
  const joined: JoinedWake[] = [];
  let jsWithoutRust = 0;
  let withoutDoorbell = 0;
  const seen = new Set<string>();
  for (const j of js) {
    const r = byId.get(j.event_id);
    if (r === undefined) {
      jsWithoutRust += 1;
      continue;
    }
    seen.add(j.event_id);
    if (
      r.claimed_us === null ||
      r.published_us === null ||
      r.ring_begins_us === null ||
      r.doorbell_us === null ||
      j.doorbell_cb_us === null ||
      j.doorbell_cb_us < r.published_us
    ) {
      withoutDoorbell += 1;
      continue;
    }
    joined.push({
      event_id: j.event_id,
      due: j.due_us,
      claimed: r.claimed_us,
      published: r.published_us,
      ring: r.ring_begins_us,
      rung: r.doorbell_us,
      callback: j.doorbell_cb_us,
      poll: j.poll_us,
      decoded: j.decoded_us,
      parsed: j.parsed_us,
      handler: j.handler_us,
    });
  }
  let rustWithoutJs = 0;
  for (const r of rust) if (!seen.has(r.event_id)) rustWithoutJs += 1;
  return { joined, jsWithoutRust, rustWithoutJs, withoutDoorbell };
}

export interface LegRow {
  leg: string;
  n: number;
  p50_us: number;
  p99_us: number;
}

/** Nearest-rank percentile of sorted values. */
function nearestRank(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

/** p50 and p99 of each leg over the joined events (each leg's percentiles on its own: they do not add up). */
export function legsTable(joined: readonly JoinedWake[]): LegRow[] {
  return WAKE_LEGS.map(({ name, from, to }) => {
    const values = new Float64Array(joined.length);
    for (let i = 0; i < joined.length; i++) {
      const e = joined[i] as JoinedWake;
      values[i] = e[to] - e[from];
    }
    values.sort();
    return { leg: name, n: joined.length, p50_us: nearestRank(values, 0.5), p99_us: nearestRank(values, 0.99) };
  });
}

/** The JS side's stamps: install with `instrument`, pass `trace` to the poller, call `handler` first in the handler. */
export class JsWakeRecorder {
  readonly records: JsWakeLeg[] = [];
  #lastDoorbell: number | null = null;
  #poll = 0;
  #decoded = 0;
  #parsed = 0;
  readonly #now: () => number;
  readonly trace: WakeTrace;

  constructor(now: () => number) {
    this.#now = now;
    this.trace = { doorbell: () => (this.#lastDoorbell = now()) };
  }

  /** Wraps this adapter's `pollStepEvents` and this reader's `next` (instance properties: nothing else changes). */
  instrument(adapter: { pollStepEvents(): FfiStepEvent | null }, reader: { next(): unknown }): void {
    const poll = adapter.pollStepEvents.bind(adapter);
    const next = reader.next.bind(reader);
    const now = this.#now;
    reader.next = () => {
      const message = next();
      this.#decoded = now();
      return message;
    };
    adapter.pollStepEvents = () => {
      this.#poll = now();
      const event = poll();
      this.#parsed = now();
      return event;
    };
  }

  /** The handler entered for `event` at `handlerUs`. */
  handler(event: FfiStepEvent, handlerUs: number): void {
    const due = event.enqueued_at_us;
    this.records.push({
      event_id: event.event_id,
      due_us: typeof due === 'number' ? due : Number.NaN,
      doorbell_cb_us: this.#lastDoorbell,
      poll_us: this.#poll,
      decoded_us: this.#decoded,
      parsed_us: this.#parsed,
      handler_us: handlerUs,
    });
  }
}
