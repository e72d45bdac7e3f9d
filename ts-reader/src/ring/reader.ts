/**
 * The consumer side of a ring, in JS (layout-spec.md section 9): checks every record before reading past
 * its prefix, reassembles fragments, and hands out decoded copies only. Errors are sticky.
 *
 * Sequences are exact u64s kept as two u32 halves (section 9.4). On a region of minor >= 1 every position
 * is claimed (section 9.5) before it is released and before the message ending there is returned, so a
 * sealed ring delivers nothing more: the message found sealed is dropped, its bytes released, and every
 * later read throws the sticky `RingSealedError`. On minor 0 the 1.1 words are never touched.
 */
import { RingPeerError, RingReadError, RingSealedError } from '../errors.ts';
import { ConsumerClaim } from './claim.ts';
import { align8, Control, Flags, FRAME_HEADER, RecordType, readU64, storeU64, supportsClaims } from './layout.ts';
import type { RegionViews, RingGeometry } from './region.ts';
import { type HeldRole, type Liveness, peerLiveness, takeRole } from './role.ts';
import { incrementSequence, loadSequence, type Sequence, sequenceBigInt, sequenceString, storeSequence } from './sequence.ts';

/** One delivered message: its record type and its payload decoded to a string (a copy). */
export class RingMessage {
  readonly type: number;
  readonly text: string;
  /** The two u32 halves of the sequence number of the message's last record. */
  readonly sequenceLo: number;
  readonly sequenceHi: number;

  constructor(type: number, text: string, sequenceLo: number, sequenceHi: number) {
    this.type = type;
    this.text = text;
    this.sequenceLo = sequenceLo;
    this.sequenceHi = sequenceHi;
  }

  /** Sequence number of the message's last record, exact (a u64). */
  get sequence(): bigint {
    return sequenceBigInt(this.sequenceLo, this.sequenceHi);
  }
}

const decoder = new TextDecoder();

export class RingReader {
  private readonly views: RegionViews;
  private readonly dv: DataView;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly ctl: number;
  private readonly data: number;
  private readonly cap: number;
  private readonly mask: number;
  private readonly maxFrame: number;
  private readonly maxMessage: number;
  private readonly headIndex: number;
  private readonly tailIndex: number;
  private readonly sleepIndex: number;
  private readonly ringName: string;
  private role: HeldRole | null;
  /** Our position (released) and the last producer position loaded. */
  private tail: number;
  private head: number;
  /** The sequence expected next, as two u32 halves (never a double: section 9.4). */
  private readonly seq: Sequence = { lo: 0, hi: 0 };
  /** The claim (minor >= 1), or null on a minor-0 region. */
  private claim: ConsumerClaim | null;
  private sealed: RingSealedError | null = null;
  private frames: number;
  private bytes: number;
  private sleeps: number;
  private openMessage: number;
  /** After a dead consumer: adopt the first record's sequence. */
  private adoptSequence: boolean;
  /** Skip continuation fragments of a message a previous consumer started. */
  private skipPartial: boolean;
  /** Type being reassembled, or 0. */
  private assembling = 0;
  private assembly: Uint8Array = new Uint8Array(0);
  private assemblyLength = 0;
  private poisoned: RingReadError | null = null;
  private closed = false;

  constructor(views: RegionViews, ring: RingGeometry, ringName = 'events') {
    this.views = views;
    this.dv = views.dv;
    this.i32 = views.i32;
    this.u8 = views.u8;
    this.u32 = views.u32;
    this.ctl = ring.control;
    this.data = ring.data;
    this.cap = ring.capacity;
    this.mask = ring.capacity - 1;
    this.maxFrame = views.maxFrameSize;
    this.maxMessage = views.maxMessageSize;
    this.headIndex = (ring.control + Control.PRODUCER_POSITION) >> 2;
    this.tailIndex = (ring.control + Control.CONSUMER_POSITION) >> 2;
    this.sleepIndex = (ring.control + Control.CONSUMER_SLEEPING) >> 2;
    this.ringName = ringName;
    this.role = takeRole(views, ring.control, 'consumer', ringName);
    // Acquire load: pairs with the previous consumer's Release store of its position (section 12).
    this.tail = Atomics.load(this.i32, this.tailIndex) >>> 0;
    this.head = this.tail;
    const dv = this.dv;
    this.openMessage = dv.getUint32(this.ctl + Control.CONSUMER_OPEN_MESSAGE, true);
    loadSequence(this.u32, this.ctl + Control.CONSUMER_NEXT_SEQUENCE, this.seq);
    this.frames = readU64(dv, this.ctl + Control.CONSUMER_FRAMES);
    this.bytes = readU64(dv, this.ctl + Control.CONSUMER_BYTES);
    this.sleeps = readU64(dv, this.ctl + Control.CONSUMER_SLEEPS);
    this.adoptSequence = this.role.tookOverFromDead;
    this.skipPartial = this.role.tookOverFromDead || this.openMessage !== 0;
    // Section 9.5's take step, after the identity CAS and the position load (minor >= 1 only).
    this.claim = supportsClaims(views.layoutMinor) ? new ConsumerClaim(views, ring.control, this.role.identity, this.tail) : null;
  }

  /** Whether this reader claims before delivering (the region's minor is at least 1). */
  get claims(): boolean {
    return this.claim !== null;
  }

  /**
   * Throws the sticky `RingSealedError` when the producer has sealed the ring, even with nothing left to
   * read (one `Atomics.load`; maintenance ticks only). A minor-0 region is never sealed.
   */
  checkSealed(): void {
    if (this.sealed) throw this.sealed;
    const claim = this.claim;
    if (claim === null || this.closed) return;
    if (claim.state !== 'claimed') this.claimOutcome(claim.state, this.tail);
    if (claim.isSealed()) this.claimOutcome('sealed', this.tail);
  }

  /** True when the producer has published bytes we have not consumed: one `Atomics.load`, no FFI. */
  hasPending(): boolean {
    if (this.closed) return false;
    // Acquire load: pairs with the producer's Release store of producer_position.
    return Atomics.load(this.i32, this.headIndex) >>> 0 !== this.tail;
  }

  /** Published bytes not yet consumed. */
  pendingBytes(): number {
    if (this.closed) return 0;
    return ((Atomics.load(this.i32, this.headIndex) >>> 0) - this.tail) >>> 0;
  }

  /**
   * The next deliverable message as a decoded copy, or null when the ring holds none. Releases the bytes
   * it read before returning. Throws the sticky `RingReadError` of a corrupt ring.
   */
  next(): RingMessage | null {
    if (this.poisoned) throw this.poisoned;
    if (this.sealed) throw this.sealed;
    if (this.closed) throw new RingPeerError('CLOSED', `the ${this.ringName} reader is closed`);
    if (this.claim !== null && this.claim.state !== 'claimed') this.claimOutcome(this.claim.state, this.tail);
    const start = this.tail;
    let pos = start;
    let head = this.head;
    const cap = this.cap;
    const u32 = this.u32;
    for (;;) {
      let avail = (head - pos) >>> 0;
      if (avail === 0) {
        // Acquire load: pairs with the producer's Release store; every record before it is whole.
        const loaded = Atomics.load(this.i32, this.headIndex) >>> 0;
        if (loaded !== head) this.u32[(this.ctl + Control.CACHED_PRODUCER_POSITION) >> 2] = loaded; // mirror, when it moved
        head = loaded;
        this.head = head;
        avail = (head - pos) >>> 0;
        if (avail === 0) {
          if (pos !== start) this.release(pos);
          return null;
        }
      }
      if (avail > cap) throw this.fail('POSITIONS_CORRUPT', pos, `consumer ${pos}, producer ${head}: distance ${avail} > capacity ${cap}`);
      if (((pos | head) & 7) !== 0) throw this.fail('MISALIGNED', pos, `consumer ${pos} or producer ${head} is not a multiple of 8`);
      const off = pos & this.mask;
      const toEnd = cap - off;
      const at = this.data + off;
      // Copy the prefix into locals before checking it (a peer must not change it between check and use).
      const word = at >> 2; // records start at multiples of 8
      const length = u32[word] as number;
      const typeAndFlags = u32[word + 1] as number; // bytes 4-5 type, 6-7 flags (little-endian)
      const type = typeAndFlags & 0xffff;
      const flags = typeAndFlags >>> 16;
      if (type === RecordType.PADDING) {
        if (length !== toEnd || flags !== 0) throw this.fail('BAD_PADDING', pos, `length ${length}, flags ${flags}, expected length ${toEnd} and flags 0`);
        if (length > avail) throw this.fail('LENGTH_PAST_PUBLISHED', pos, `padding of ${length} > ${avail} published`);
        pos = (pos + length) >>> 0;
        continue;
      }
      if (length < FRAME_HEADER) throw this.fail('LENGTH_TOO_SMALL', pos, `length ${length} < 16`);
      if (length > this.maxFrame) throw this.fail('FRAME_TOO_LARGE', pos, `length ${length} > max_frame_size ${this.maxFrame}`);
      const footprint = align8(length);
      if (footprint > toEnd) throw this.fail('STRADDLES', pos, `footprint ${footprint} > ${toEnd} bytes to the ring's end`);
      if (footprint > avail) throw this.fail('LENGTH_PAST_PUBLISHED', pos, `footprint ${footprint} > ${avail} published`);
      if (type < RecordType.SKIPPABLE_FIRST && type !== RecordType.STEP_EVENT && type !== RecordType.COMPLETION) {
        throw this.fail('UNKNOWN_RECORD_TYPE', pos, `record type 0x${type.toString(16)}`);
      }
      if ((flags & ~Flags.KNOWN) !== 0) throw this.fail('UNKNOWN_FLAGS', pos, `flags 0x${flags.toString(16)}`);
      const abort = (flags & Flags.ABORT) !== 0;
      if (abort && ((flags & Flags.END) === 0 || length !== FRAME_HEADER)) {
        throw this.fail('FRAGMENT_OUT_OF_ORDER', pos, `abort flags 0x${flags.toString(16)} with length ${length}`);
      }
      // Section 9.4: the u64 as two halves, compared exactly; an abort marker (or the first record after a
      // dead consumer) restarts the sequence.
      const seqLo = u32[word + 2] as number;
      const seqHi = u32[word + 3] as number;
      const seq = this.seq;
      if (abort || this.adoptSequence) {
        this.adoptSequence = false;
      } else if (seqLo !== seq.lo || seqHi !== seq.hi) {
        throw this.fail('SEQUENCE_GAP', pos, `expected sequence ${sequenceString(seq.lo, seq.hi)}, found ${sequenceString(seqLo, seqHi)}`);
      }
      seq.lo = seqLo;
      seq.hi = seqHi;
      incrementSequence(seq);
      const payloadStart = at + FRAME_HEADER;
      const payloadEnd = at + length;
      const recordPos = pos; // errors below name this record, not the next
      pos = (pos + footprint) >>> 0;
      this.frames += 1;
      this.bytes += length - FRAME_HEADER;
      // Section 9.3, in order.
      if (abort) {
        this.assembling = 0;
        this.assemblyLength = 0;
        this.skipPartial = false;
        continue;
      }
      const fragment = flags & Flags.UNFRAGMENTED;
      if (fragment === Flags.UNFRAGMENTED && this.assembling === 0) {
        this.skipPartial = false;
        if (type >= RecordType.SKIPPABLE_FIRST) continue;
        const text = decoder.decode(this.u8.subarray(payloadStart, payloadEnd));
        this.release(pos);
        return new RingMessage(type, text, seqLo, seqHi);
      }
      if (fragment === Flags.BEGIN && this.assembling === 0) {
        this.skipPartial = false;
        this.assembling = type;
        this.assemblyLength = 0;
        this.append(recordPos, pos, payloadStart, payloadEnd);
        continue;
      }
      if ((fragment === 0 || fragment === Flags.END) && this.assembling === 0 && this.skipPartial) continue;
      if (fragment === 0 && this.assembling === type) {
        this.append(recordPos, pos, payloadStart, payloadEnd);
        continue;
      }
      if (fragment === Flags.END && this.assembling === type) {
        this.append(recordPos, pos, payloadStart, payloadEnd);
        this.assembling = 0;
        if (type >= RecordType.SKIPPABLE_FIRST) continue;
        const text = decoder.decode(this.assembly.subarray(0, this.assemblyLength));
        this.assemblyLength = 0;
        this.release(pos);
        return new RingMessage(type, text, seqLo, seqHi);
      }
      throw this.fail(
        'FRAGMENT_OUT_OF_ORDER',
        recordPos,
        `flags 0x${flags.toString(16)} for type 0x${type.toString(16)} while assembling 0x${this.assembling.toString(16)}`,
      );
    }
  }

  /** Section 10: asks for a doorbell. True when the consumer may sleep; false when data arrived meanwhile. */
  prepareSleep(): boolean {
    if (this.closed || this.poisoned || this.sealed) return false;
    // Relaxed store then a full fence: JS Atomics are sequentially consistent, so the reload below cannot
    // move before the store (pairs with the producer's fence + CAS of consumer_sleeping).
    Atomics.store(this.i32, this.sleepIndex, 1);
    if (Atomics.load(this.i32, this.headIndex) >>> 0 !== this.tail) {
      Atomics.store(this.i32, this.sleepIndex, 0);
      return false;
    }
    this.sleeps += 1;
    storeU64(this.u32, this.ctl + Control.CONSUMER_SLEEPS, this.sleeps);
    return true;
  }

  /** Clears the sleeping flag (after a doorbell or a tick). */
  wake(): void {
    if (!this.closed) Atomics.store(this.i32, this.sleepIndex, 0);
  }

  /** Stamps the consumer heartbeat (maintenance ticks only). */
  heartbeat(): void {
    this.role?.heartbeat();
  }

  /** The producer role's holder and its liveness (section 13); for maintenance ticks, never per event. */
  producerLiveness(): { pid: number; state: Liveness; heartbeatAgeMs: number } {
    return peerLiveness(this.views, this.ctl, 'producer');
  }

  /**
   * Gives the role back (section 12): `claiming_identity` = 0 (minor >= 1), then the identity. Idempotent.
   * No view of the region is used after this.
   */
  close(): void {
    if (this.closed) return;
    Atomics.store(this.i32, this.sleepIndex, 0);
    this.closed = true;
    this.claim?.release();
    this.claim = null;
    this.role?.release();
    this.role = null;
    this.assembly = new Uint8Array(0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Appends the fragment at `recordPos` (payload `from..to`) and releases up to `next`, the record after it. */
  private append(recordPos: number, next: number, from: number, to: number): void {
    const n = to - from;
    const needed = this.assemblyLength + n;
    if (needed > this.maxMessage) {
      throw this.fail('MESSAGE_TOO_LARGE', recordPos, `reassembled message of ${needed} bytes > max_message_size ${this.maxMessage}`);
    }
    if (needed > this.assembly.length) {
      const grown = new Uint8Array(Math.min(this.maxMessage, Math.max(needed, this.assembly.length * 2, 4096)));
      grown.set(this.assembly.subarray(0, this.assemblyLength));
      this.assembly = grown;
    }
    this.assembly.set(this.u8.subarray(from, to), this.assemblyLength);
    this.assemblyLength = needed;
    // Fragments are copied: release them now so a message larger than the ring streams through.
    this.release(next);
  }

  /**
   * Section 9.1 step 5, preceded on minor >= 1 by section 9.5's claim: claim up to `pos` (everything read so
   * far), then statistics, then the Release store of consumer_position. The claim comes first, so the
   * position is never ahead of it and no message ending at `pos` is returned unclaimed. Found sealed: the
   * bytes are released as usual, the message being read is dropped, and `RingSealedError` is thrown (sticky).
   * Found foreign: `RingReadError('CLAIM_CORRUPT')`, nothing released.
   */
  private release(pos: number): void {
    const claim = this.claim;
    const outcome = claim === null ? 'claimed' : claim.advance(pos);
    if (outcome === 'corrupt') this.claimOutcome(outcome, pos);
    if (outcome === 'sealed') {
      this.assembling = 0; // dropped undelivered: the producer hands it elsewhere
      this.assemblyLength = 0;
    }
    this.storeRelease(pos);
    if (outcome === 'sealed') this.claimOutcome(outcome, pos);
  }

  /** Throws the sticky error for a claim that is over: `RingSealedError`, or `RingReadError('CLAIM_CORRUPT')`. */
  private claimOutcome(outcome: 'sealed' | 'corrupt', pos: number): never {
    const claim = this.claim as ConsumerClaim;
    if (outcome === 'sealed') {
      this.sealed ??= new RingSealedError(
        `the ${this.ringName} ring is sealed: its producer (the worker core) is stopping and hands every unclaimed message back to its source; nothing more is delivered`,
      );
      throw this.sealed;
    }
    throw this.fail(
      'CLAIM_CORRUPT',
      pos,
      `consumer_claim was 0x${claim.found.toString(16)}, expected this consumer's last claim 0x${claim.position.toString(16)} (or it with SEALED): someone else wrote the word`,
    );
  }

  /** Line 4 (plain), then the Release store of consumer_position. */
  private storeRelease(pos: number): void {
    const u32 = this.u32;
    const open = this.assembling !== 0 ? 1 : 0;
    if (open !== this.openMessage) {
      this.openMessage = open;
      u32[(this.ctl + Control.CONSUMER_OPEN_MESSAGE) >> 2] = open;
    }
    storeSequence(u32, this.ctl + Control.CONSUMER_NEXT_SEQUENCE, this.seq);
    storeU64(u32, this.ctl + Control.CONSUMER_FRAMES, this.frames);
    storeU64(u32, this.ctl + Control.CONSUMER_BYTES, this.bytes);
    this.tail = pos;
    // Release store: pairs with the producer's Acquire load of consumer_position; our reads are done.
    Atomics.store(this.i32, this.tailIndex, pos | 0);
  }

  private fail(code: ConstructorParameters<typeof RingReadError>[0], position: number, detail: string): RingReadError {
    this.poisoned = new RingReadError(code, position, `${this.ringName} ring: ${detail}`);
    return this.poisoned;
  }
}
