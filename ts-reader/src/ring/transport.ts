/**
 * The ring transport of one worker: the events reader, the completions writer and the completions that
 * wait in memory for room. Nothing here calls FFI; the adapter maps and releases the region around it.
 */
import { statSync } from 'node:fs';
import { EventDecodeError, FfiCallError, RingPeerError } from '../errors.ts';
import type { FfiStepEvent, RingMetrics } from '../protocol.ts';
import { Control, RecordType, readU64 } from './layout.ts';
import { RingReader } from './reader.ts';
import { attachRegion, type RegionViews } from './region.ts';
import { isCanonicalEventId, type OutgoingMessage, RingWriter } from './writer.ts';

export interface RingTransportOptions {
  /** The region file, for the size check on maintenance ticks (absent: not checked). */
  regionPath?: string | null;
}

/**
 * The transport's internals, for this repository's benchmarks only (they time the reader alone). Not
 * exported by the package.
 */
export let transportInternals: (transport: RingTransport) => { views: RegionViews; reader: RingReader };

/** A completion's, give-back's or checkpoint's event id must be canonical (section 7). */
function checkEventId(eventId: string): void {
  if (!isCanonicalEventId(eventId)) {
    throw new FfiCallError(`event id '${eventId}' is not a canonical lowercase UUID`, undefined, 'INVALID_ARGUMENT');
  }
}

export class RingTransport {
  /** Every view of shared memory: private, so none outlives the mapping in user code. */
  readonly #views: RegionViews;
  readonly #reader: RingReader;
  readonly #writer: RingWriter;
  readonly #regionPath: string | null;
  /** Completions waiting for room, oldest first (a fragmented one may be partly written). */
  readonly #queued: OutgoingMessage[] = [];
  #queueHead = 0;
  #closed = false;

  static {
    transportInternals = (transport) => ({ views: transport.#views, reader: transport.#reader });
  }

  constructor(buffer: ArrayBuffer, options: RingTransportOptions = {}) {
    this.#views = attachRegion(buffer);
    this.#reader = new RingReader(this.#views, this.#views.events, 'events');
    try {
      this.#writer = new RingWriter(this.#views, this.#views.completions, 'completions');
    } catch (error) {
      this.#reader.close();
      throw error;
    }
    this.#regionPath = options.regionPath ?? null;
  }

  /** One `Atomics.load`: whether the events ring holds unread bytes. */
  hasPending(): boolean {
    return this.#reader.hasPending();
  }

  /**
   * The next step event, parsed (a copy: no view of shared memory), or null. A payload that is not a
   * step event's JSON throws `EventDecodeError` and is consumed (the ring itself is fine).
   */
  nextEvent(): FfiStepEvent | null {
    const message = this.#reader.next();
    if (message === null) return null;
    if (message.type !== RecordType.STEP_EVENT) {
      throw new EventDecodeError(`events ring delivered a record of type 0x${message.type.toString(16)}, not a step event`, message.text.slice(0, 120));
    }
    let event: FfiStepEvent;
    try {
      event = JSON.parse(message.text) as FfiStepEvent;
    } catch (error) {
      throw new EventDecodeError(`step event #${message.sequence} is not valid JSON: ${(error as Error).message}`, message.text.slice(0, 120), error);
    }
    if (typeof event !== 'object' || event === null || typeof event.event_id !== 'string') {
      throw new EventDecodeError(`step event #${message.sequence} has no event_id`, message.text.slice(0, 120));
    }
    return event;
  }

  /** The region's `layout_minor` (1.1 claims and records when it is at least 1). */
  get layoutMinor(): number {
    return this.#views.layoutMinor;
  }

  /**
   * Queues a completion and writes whatever the ring has room for, in order. Never blocks, never drops:
   * what does not fit waits here for `flush()` (the poller calls it every tick).
   */
  complete(eventId: string, resultJson: string): void {
    this.#assertSendable('the completion');
    checkEventId(eventId);
    this.#send(this.#writer.prepare(RecordType.COMPLETION, eventId, resultJson));
  }

  /**
   * Queues GIVE_BACK records for `eventIds` (layout-spec.md section 7, 1.1): one record, or one per
   * `max_message_size / 36` ids, in order with the completions. Every id is checked before anything is
   * queued. A minor-0 region: `UnsupportedByWorkerError`, nothing sent.
   */
  giveBack(eventIds: readonly string[]): void {
    this.#assertSendable('the give-back');
    for (const id of eventIds) checkEventId(id);
    const per = this.#writer.maxGiveBackIds;
    const messages: OutgoingMessage[] = [];
    for (let i = 0; i < eventIds.length; i += per) messages.push(this.#writer.prepareGiveBack(eventIds.slice(i, i + per)));
    for (const message of messages) this.#send(message);
  }

  /**
   * Queues a CHECKPOINT record (layout-spec.md section 7, 1.1): the event id, then the checkpoint's JSON
   * object. A minor-0 region: `UnsupportedByWorkerError`, nothing sent.
   */
  checkpoint(eventId: string, checkpointJson: string): void {
    this.#assertSendable('the checkpoint');
    checkEventId(eventId);
    this.#send(this.#writer.prepareCheckpoint(eventId, checkpointJson));
  }

  #assertSendable(what: string): void {
    if (this.#closed) throw new RingPeerError('CLOSED', `the ring transport is closed; ${what} was not sent`);
  }

  /** Writes now when nothing waits before it, else queues (order is kept). */
  #send(message: OutgoingMessage): void {
    if (this.queuedCount() === 0 && this.#writer.offer(message)) return;
    this.#queued.push(message);
  }

  /** Writes queued completions until the ring is full. Returns how many are still queued. */
  flush(): number {
    while (this.#queueHead < this.#queued.length) {
      const message = this.#queued[this.#queueHead] as OutgoingMessage;
      if (!this.#writer.offer(message)) break;
      this.#queueHead += 1;
    }
    if (this.#queueHead === this.#queued.length) {
      this.#queued.length = 0;
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queued.length) {
      this.#queued.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
    return this.queuedCount();
  }

  queuedCount(): number {
    return this.#queued.length - this.#queueHead;
  }

  /** Asks for a doorbell before sleeping (false: events arrived meanwhile, read them). */
  prepareSleep(): boolean {
    return this.#reader.prepareSleep();
  }

  wake(): void {
    this.#reader.wake();
  }

  /**
   * Maintenance (never per event): heartbeats, the region size check (a shrunk file would SIGBUS the
   * next read), the producer's liveness, and (minor >= 1) its seal. Throws `RingPeerError` when the ring
   * cannot be used, `RingSealedError` once the producer sealed it (also when nothing is left to read).
   * `checkSize` false skips the size check (a `stat`): for a region whose worker core runs in this process,
   * which checks the same file on its own maintenance ticks and fails when it shrank (layout-spec.md 13).
   */
  maintain(checkSize = true): void {
    if (this.#closed) return;
    this.#reader.checkSealed();
    this.#reader.heartbeat();
    this.#writer.heartbeat();
    if (checkSize && this.#regionPath) {
      let size: number | null = null;
      try {
        size = statSync(this.#regionPath).size;
      } catch {
        size = null; // unlinked at stop: the mapping stays valid
      }
      if (size !== null && size < this.#views.regionSize) {
        throw new RingPeerError(
          'REGION_TRUNCATED',
          `region file ${this.#regionPath} shrank to ${size} bytes (< ${this.#views.regionSize}); reading it would crash the process`,
        );
      }
    }
    const producer = this.#reader.producerLiveness();
    if (producer.state === 'dead') {
      throw new RingPeerError('PEER_DEAD', `the events ring's producer (pid ${producer.pid}) is dead`);
    }
  }

  /** Statistics from the header; no FFI call. */
  metrics(): RingMetrics {
    const { dv, i32, events, completions } = this.#views;
    const used = (ctl: number) => (Atomics.load(i32, (ctl + Control.PRODUCER_POSITION) >> 2) - Atomics.load(i32, (ctl + Control.CONSUMER_POSITION) >> 2)) >>> 0;
    const hb = readU64(dv, events.control + Control.PRODUCER_PEER + Control.PEER_HEARTBEAT);
    return {
      events_pending_bytes: used(events.control),
      events_capacity: events.capacity,
      events_published_frames: readU64(dv, events.control + Control.PRODUCER_FRAMES),
      events_consumed_frames: readU64(dv, events.control + Control.CONSUMER_FRAMES),
      consumer_sleeps: readU64(dv, events.control + Control.CONSUMER_SLEEPS),
      doorbells: readU64(dv, events.control + Control.PRODUCER_DOORBELLS),
      completions_pending_bytes: used(completions.control),
      completions_capacity: completions.capacity,
      completions_queued: this.queuedCount(),
      full_stalls: readU64(dv, completions.control + Control.PRODUCER_FULL_STALLS),
      producer_heartbeat_age_ms: hb === 0 ? -1 : Date.now() - hb,
    };
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Gives both roles back. Idempotent. Queued completions are flushed once more first. */
  close(): number {
    if (this.#closed) return 0;
    const left = this.flush();
    this.#closed = true;
    this.#reader.close();
    this.#writer.close();
    return left;
  }
}
