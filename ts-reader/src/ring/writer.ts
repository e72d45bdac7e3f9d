/**
 * The producer side of a ring, in JS (layout-spec.md section 8), for completions: a record is written with
 * plain stores and published by one Release store of producer_position. Never blocks: a message that does
 * not fit now stays with the caller and is offered again later; a message larger than one frame is
 * streamed fragment by fragment across offers.
 */
import { RingWriteError, UnsupportedByWorkerError } from '../errors.ts';
import { align8, COMPLETION_ID_LEN, Control, Flags, FRAME_HEADER, RecordType, readU64, storeU64, supportsClaims } from './layout.ts';
import type { RegionViews, RingGeometry } from './region.ts';
import { type HeldRole, takeRole } from './role.ts';
import { incrementSequence, loadSequence, type Sequence, storeSequence } from './sequence.ts';

const encoder = new TextEncoder();

/** A message on its way into the ring; `offer` advances `sent` until it equals the payload size. */
export class OutgoingMessage {
  readonly type: number;
  /** 36 ASCII bytes written before the JSON (the completion's event id), or ''. */
  readonly prefix: string;
  readonly json: string;
  /** The whole payload, encoded only when it cannot go out as one frame encoded in place. */
  bytes: Uint8Array | null = null;
  /** Payload bytes already published (fragmented messages only). */
  sent = 0;

  constructor(type: number, prefix: string, json: string) {
    this.type = type;
    this.prefix = prefix;
    this.json = json;
  }
}

/** Canonical event id text: 36 chars, lowercase hex, hyphens at 8, 13, 18, 23 (section 7). A loop, not a
 * regular expression: this runs once per completion. */
export function isCanonicalEventId(id: string): boolean {
  if (typeof id !== 'string' || id.length !== COMPLETION_ID_LEN) return false;
  for (let i = 0; i < COMPLETION_ID_LEN; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d) return false;
    } else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) {
      return false;
    }
  }
  return true;
}

export class RingWriter {
  private readonly dv: DataView;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly ctl: number;
  private readonly data: number;
  private readonly cap: number;
  private readonly mask: number;
  private readonly maxPayload: number;
  readonly maxMessage: number;
  /** The region's `layout_minor`: the 1.1 records (GIVE_BACK, CHECKPOINT) only when it is at least 1. */
  readonly layoutMinor: number;
  private readonly headIndex: number;
  private readonly tailIndex: number;
  private role: HeldRole | null;
  private head: number;
  private cachedTail: number;
  /** The next record's sequence, as two u32 halves (exact: section 9.4). */
  private readonly seq: Sequence = { lo: 0, hi: 0 };
  private frames: number;
  private bytes: number;
  private pads: number;
  private fullStalls: number;
  private openMessage: number;
  /** Write an abort marker before the next message (a predecessor may have left fragments). */
  private abortPending: boolean;
  private closed = false;

  constructor(views: RegionViews, ring: RingGeometry, ringName = 'completions') {
    this.dv = views.dv;
    this.i32 = views.i32;
    this.u8 = views.u8;
    this.u32 = views.u32;
    this.ctl = ring.control;
    this.data = ring.data;
    this.cap = ring.capacity;
    this.mask = ring.capacity - 1;
    this.maxPayload = views.maxFrameSize - FRAME_HEADER;
    this.maxMessage = views.maxMessageSize;
    this.layoutMinor = views.layoutMinor;
    this.headIndex = (ring.control + Control.PRODUCER_POSITION) >> 2;
    this.tailIndex = (ring.control + Control.CONSUMER_POSITION) >> 2;
    this.role = takeRole(views, ring.control, 'producer', ringName);
    // Acquire loads: pair with the previous producer's and the consumer's Release stores (section 12).
    this.head = Atomics.load(this.i32, this.headIndex) >>> 0;
    this.cachedTail = Atomics.load(this.i32, this.tailIndex) >>> 0;
    const dv = this.dv;
    this.openMessage = dv.getUint32(this.ctl + Control.PRODUCER_OPEN_MESSAGE, true);
    loadSequence(this.u32, this.ctl + Control.PRODUCER_NEXT_SEQUENCE, this.seq);
    this.frames = readU64(dv, this.ctl + Control.PRODUCER_FRAMES);
    this.bytes = readU64(dv, this.ctl + Control.PRODUCER_BYTES);
    this.pads = readU64(dv, this.ctl + Control.PRODUCER_PADS);
    this.fullStalls = readU64(dv, this.ctl + Control.PRODUCER_FULL_STALLS);
    this.abortPending = this.role.tookOverFromDead || this.openMessage !== 0;
  }

  /**
   * Checks a message against the limits before it is queued: a payload over `max_message_size` can never
   * be written (`RingWriteError('MESSAGE_TOO_LARGE')`, with its exact size).
   */
  prepare(type: number, prefix: string, json: string): OutgoingMessage {
    if (type === RecordType.GIVE_BACK || type === RecordType.CHECKPOINT) this.require11(type === RecordType.GIVE_BACK ? 'give_back' : 'checkpoint');
    const message = new OutgoingMessage(type, prefix, json);
    if (prefix.length + json.length * 3 > this.maxMessage) {
      const size = prefix.length + encoder.encode(json).length;
      if (size > this.maxMessage) {
        throw new RingWriteError('MESSAGE_TOO_LARGE', `message of ${size} bytes > max_message_size ${this.maxMessage}`);
      }
    }
    return message;
  }

  /** The most event ids one GIVE_BACK record can carry (`max_message_size / 36`). */
  get maxGiveBackIds(): number {
    return Math.floor(this.maxMessage / COMPLETION_ID_LEN);
  }

  /**
   * A GIVE_BACK record (layout-spec.md section 7, 1.1): the canonical ids back to back, `k * 36` bytes, one
   * message (fragmented by `offer` like any other when it exceeds a frame). The caller checks the ids; at
   * most `maxGiveBackIds` of them. On a minor-0 region: `UnsupportedByWorkerError`, nothing prepared.
   */
  prepareGiveBack(eventIds: readonly string[]): OutgoingMessage {
    this.require11('give_back');
    if (eventIds.length === 0) throw new RangeError('a GIVE_BACK record carries at least one event id');
    if (eventIds.length > this.maxGiveBackIds) {
      throw new RingWriteError(
        'MESSAGE_TOO_LARGE',
        `${eventIds.length} ids need ${eventIds.length * COMPLETION_ID_LEN} bytes > max_message_size ${this.maxMessage}`,
      );
    }
    return this.prepare(RecordType.GIVE_BACK, eventIds.join(''), '');
  }

  /**
   * A CHECKPOINT record (layout-spec.md section 7, 1.1): the 36-byte event id, then the checkpoint's JSON
   * object. On a minor-0 region: `UnsupportedByWorkerError`, nothing prepared.
   */
  prepareCheckpoint(eventId: string, checkpointJson: string): OutgoingMessage {
    this.require11('checkpoint');
    return this.prepare(RecordType.CHECKPOINT, eventId, checkpointJson);
  }

  /**
   * Writes as much of `message` as fits now and publishes it. True when the whole message is published;
   * false when it (or its rest) must be offered again later. Never blocks.
   */
  offer(message: OutgoingMessage): boolean {
    if (this.closed) return false;
    if (this.abortPending) {
      if (!this.reserve(FRAME_HEADER)) return this.stalled();
      this.writeRecord(RecordType.NOOP, Flags.END | Flags.ABORT, 0);
      this.abortPending = false;
      this.publish(0);
    }
    if (message.bytes === null && message.sent === 0) {
      const worst = message.prefix.length + message.json.length * 3;
      if (worst <= this.maxPayload) return this.offerInPlace(message, worst);
      message.bytes = this.encodeWhole(message);
    }
    return this.offerEncoded(message);
  }

  /** Free bytes as last known (reloads the consumer position). Statistics. */
  freeBytes(): number {
    this.reloadTail();
    return this.cap - ((this.head - this.cachedTail) >>> 0);
  }

  heartbeat(): void {
    this.role?.heartbeat();
  }

  /** Gives the role back. Idempotent. An unfinished fragmented message is healed by the next producer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.role?.release();
    this.role = null;
  }

  /** Section 16: a 1.1 record goes only to a region of minor >= 1 (a 1.0 worker core would skip it). */
  private require11(feature: 'give_back' | 'checkpoint'): void {
    if (!supportsClaims(this.layoutMinor)) {
      throw new UnsupportedByWorkerError(
        feature,
        `the region is layout 1.${this.layoutMinor}, which has no ${feature === 'give_back' ? 'GIVE_BACK' : 'CHECKPOINT'} record (it needs 1.1: upgrade libtasker_worker)`,
      );
    }
  }

  /** One frame, encoded straight into the ring with `encodeInto` (no intermediate copy). */
  private offerInPlace(message: OutgoingMessage, worst: number): boolean {
    if (!this.reserve(FRAME_HEADER + worst)) return this.stalled();
    const at = this.data + (this.head & this.mask) + FRAME_HEADER;
    const prefix = message.prefix;
    for (let i = 0; i < prefix.length; i++) this.u8[at + i] = prefix.charCodeAt(i);
    const { written } = encoder.encodeInto(message.json, this.u8.subarray(at + prefix.length, at + worst));
    this.writeRecord(message.type, Flags.UNFRAGMENTED, prefix.length + written);
    this.publish(0);
    return true;
  }

  /** An encoded payload: one frame, or fragments of `max_frame_size - 16` bytes, as many as fit now. */
  private offerEncoded(message: OutgoingMessage): boolean {
    const bytes = message.bytes as Uint8Array;
    const total = bytes.length;
    let wrote = false;
    while (message.sent < total || total === 0) {
      const n = Math.min(this.maxPayload, total - message.sent);
      if (!this.reserve(FRAME_HEADER + n)) {
        if (wrote) this.publish(1);
        return this.stalled();
      }
      const first = message.sent === 0;
      const last = message.sent + n === total;
      const flags = (first ? Flags.BEGIN : 0) | (last ? Flags.END : 0);
      const at = this.data + (this.head & this.mask) + FRAME_HEADER;
      this.u8.set(bytes.subarray(message.sent, message.sent + n), at);
      this.writeRecord(message.type, flags, n);
      message.sent += n;
      wrote = true;
      if (last) break;
    }
    this.publish(0);
    return true;
  }

  private encodeWhole(message: OutgoingMessage): Uint8Array {
    const json = encoder.encode(message.json);
    const bytes = new Uint8Array(message.prefix.length + json.length);
    for (let i = 0; i < message.prefix.length; i++) bytes[i] = message.prefix.charCodeAt(i);
    bytes.set(json, message.prefix.length);
    return bytes;
  }

  /**
   * Makes room for a record of `length` bytes at `head`: pads to the ring's end first when it would not
   * fit there (section 6.2). False when the consumer has not freed enough yet (nothing written).
   */
  private reserve(length: number): boolean {
    const footprint = align8(length);
    const toEnd = this.cap - (this.head & this.mask);
    const needed = footprint > toEnd ? toEnd + footprint : footprint;
    if (!this.hasRoom(needed)) return false;
    if (footprint > toEnd) {
      const at = this.data + (this.head & this.mask);
      this.u32[at >> 2] = toEnd;
      this.u32[(at >> 2) + 1] = RecordType.PADDING; // type, flags 0
      if (toEnd >= FRAME_HEADER) storeU64(this.u32, at + 8, 0); // exactly 8 bytes left: no sequence field
      this.head = (this.head + toEnd) >>> 0;
      this.pads += 1;
    }
    return true;
  }

  private hasRoom(bytes: number): boolean {
    if ((this.head + bytes - this.cachedTail) >>> 0 <= this.cap && bytes <= this.cap) return true;
    this.reloadTail();
    return (this.head + bytes - this.cachedTail) >>> 0 <= this.cap && bytes <= this.cap;
  }

  private reloadTail(): void {
    // Acquire load: pairs with the consumer's Release store of consumer_position (its reads are done).
    this.cachedTail = Atomics.load(this.i32, this.tailIndex) >>> 0;
    this.u32[(this.ctl + Control.CACHED_CONSUMER_POSITION) >> 2] = this.cachedTail;
  }

  /** Header, zero fill and counters for a record whose payload is already in place at `head + 16`. */
  private writeRecord(type: number, flags: number, payloadLength: number): void {
    const at = this.data + (this.head & this.mask);
    const length = FRAME_HEADER + payloadLength;
    const footprint = align8(length);
    this.u8.fill(0, at + length, at + footprint);
    const word = at >> 2;
    this.u32[word] = length;
    this.u32[word + 1] = type | (flags << 16); // little-endian: type at +4, flags at +6
    storeSequence(this.u32, at + 8, this.seq);
    incrementSequence(this.seq);
    this.frames += 1;
    this.bytes += payloadLength;
    this.head = (this.head + footprint) >>> 0;
  }

  /** Section 8 step 6: line 3 (plain), then the Release store of producer_position. */
  private publish(open: number): void {
    const u32 = this.u32;
    if (open !== this.openMessage) {
      this.openMessage = open;
      u32[(this.ctl + Control.PRODUCER_OPEN_MESSAGE) >> 2] = open;
    }
    storeSequence(u32, this.ctl + Control.PRODUCER_NEXT_SEQUENCE, this.seq);
    storeU64(u32, this.ctl + Control.PRODUCER_FRAMES, this.frames);
    storeU64(u32, this.ctl + Control.PRODUCER_BYTES, this.bytes);
    storeU64(u32, this.ctl + Control.PRODUCER_PADS, this.pads);
    // Release store: pairs with the consumer's Acquire load of producer_position; the records are whole.
    Atomics.store(this.i32, this.headIndex, this.head | 0);
  }

  private stalled(): false {
    this.fullStalls += 1;
    storeU64(this.u32, this.ctl + Control.PRODUCER_FULL_STALLS, this.fullStalls);
    return false;
  }
}
