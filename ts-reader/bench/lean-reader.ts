/**
 * A what-if for the hot-path bench, not a reader to use: the unfragmented path of `RingReader.next()`
 * (src/ring/reader.ts) with the same checks in the same order, changed in three ways only, so the bench can
 * put a number on them before anyone edits the real reader:
 * 1. the frame prefix (length, type, flags, sequence) is read through Uint32Array / Uint16Array views
 *    instead of DataView (the layout is little-endian; so is every host the package runs on);
 * 2. the sequence is checked as two uint32 words, without building a 53-bit double per frame;
 * 3. the consumer statistics (next sequence, frames, bytes: three u64 = six DataView stores) are written
 *    every 64 messages and when the ring is found empty, instead of after every message. The Release store
 *    of consumer_position still follows every message.
 * Used only over regions the bench builds in JS memory (tests/support/region-builder.ts).
 */
import { align8, Control, Flags, FRAME_HEADER, RecordType, readU64, writeU64 } from '../src/ring/layout.ts';
import type { RegionViews, RingGeometry } from '../src/ring/region.ts';

const decoder = new TextDecoder();
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class LeanReader {
  private readonly dv: DataView;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly u16: Uint16Array;
  private readonly u8: Uint8Array;
  private readonly ctl: number;
  private readonly data: number;
  private readonly cap: number;
  private readonly mask: number;
  private readonly maxFrame: number;
  private readonly headIndex: number;
  private readonly tailIndex: number;
  private tail: number;
  private head: number;
  private seqLo: number;
  private seqHi: number;
  private frames: number;
  private bytes: number;
  private unsaved = 0;

  constructor(views: RegionViews, ring: RingGeometry) {
    if (!littleEndian) throw new Error('LeanReader: little-endian hosts only');
    this.dv = views.dv;
    this.i32 = views.i32;
    this.u32 = new Uint32Array(views.buffer, 0, views.buffer.byteLength >>> 2);
    this.u16 = new Uint16Array(views.buffer, 0, views.buffer.byteLength >>> 1);
    this.u8 = views.u8;
    this.ctl = ring.control;
    this.data = ring.data;
    this.cap = ring.capacity;
    this.mask = ring.capacity - 1;
    this.maxFrame = views.maxFrameSize;
    this.headIndex = (ring.control + Control.PRODUCER_POSITION) >> 2;
    this.tailIndex = (ring.control + Control.CONSUMER_POSITION) >> 2;
    this.tail = Atomics.load(this.i32, this.tailIndex) >>> 0;
    this.head = this.tail;
    const seq = readU64(this.dv, this.ctl + Control.CONSUMER_NEXT_SEQUENCE);
    this.seqLo = seq >>> 0;
    this.seqHi = Math.floor(seq / 2 ** 32) >>> 0;
    this.frames = readU64(this.dv, this.ctl + Control.CONSUMER_FRAMES);
    this.bytes = readU64(this.dv, this.ctl + Control.CONSUMER_BYTES);
  }

  /** The next message's type, text and sequence, as `RingReader.next()` returns them, or null. */
  next(): { type: number; text: string; sequence: number } | null {
    const cap = this.cap;
    const u32 = this.u32;
    const u16 = this.u16;
    let pos = this.tail;
    let head = this.head;
    for (;;) {
      let avail = (head - pos) >>> 0;
      if (avail === 0) {
        head = Atomics.load(this.i32, this.headIndex) >>> 0;
        if (head !== this.head) {
          this.head = head;
          u32[(this.ctl + Control.CACHED_PRODUCER_POSITION) >> 2] = head;
        }
        avail = (head - pos) >>> 0;
        if (avail === 0) {
          if (this.unsaved !== 0) this.saveStatistics();
          if (pos !== this.tail) {
            this.tail = pos;
            Atomics.store(this.i32, this.tailIndex, pos | 0);
          }
          return null;
        }
      }
      if (avail > cap) throw new Error(`positions corrupt at ${pos}`);
      if (((pos | head) & 7) !== 0) throw new Error(`misaligned at ${pos}`);
      const off = pos & this.mask;
      const toEnd = cap - off;
      const at = this.data + off;
      const w = at >> 2;
      const length = u32[w] as number;
      const type = u16[(at + 4) >> 1] as number;
      const flags = u16[(at + 6) >> 1] as number;
      if (type === RecordType.PADDING) {
        if (length !== toEnd || flags !== 0) throw new Error(`bad padding at ${pos}`);
        if (length > avail) throw new Error(`padding past published at ${pos}`);
        pos = (pos + length) >>> 0;
        continue;
      }
      if (length < FRAME_HEADER) throw new Error(`length ${length} < 16 at ${pos}`);
      if (length > this.maxFrame) throw new Error(`frame too large at ${pos}`);
      const footprint = align8(length);
      if (footprint > toEnd) throw new Error(`frame straddles the end at ${pos}`);
      if (footprint > avail) throw new Error(`frame past published at ${pos}`);
      if (type < RecordType.SKIPPABLE_FIRST && type !== RecordType.STEP_EVENT && type !== RecordType.COMPLETION) {
        throw new Error(`unknown record type at ${pos}`);
      }
      if ((flags & ~Flags.KNOWN) !== 0) throw new Error(`unknown flags at ${pos}`);
      if (flags !== Flags.UNFRAGMENTED) throw new Error('LeanReader: unfragmented frames only');
      const seqLo = this.seqLo;
      const seqHi = this.seqHi;
      if (u32[w + 2] !== seqLo || u32[w + 3] !== seqHi) throw new Error(`sequence gap at ${pos}`);
      this.seqLo = (seqLo + 1) >>> 0;
      if (this.seqLo === 0) this.seqHi = (seqHi + 1) >>> 0;
      pos = (pos + footprint) >>> 0;
      this.frames += 1;
      this.bytes += length - FRAME_HEADER;
      if (type >= RecordType.SKIPPABLE_FIRST) continue;
      const text = decoder.decode(this.u8.subarray(at + FRAME_HEADER, at + length));
      if (++this.unsaved >= 64) this.saveStatistics();
      this.tail = pos;
      // Release store: our reads of the frame are done.
      Atomics.store(this.i32, this.tailIndex, pos | 0);
      return { type, text, sequence: seqHi * 2 ** 32 + seqLo };
    }
  }

  private saveStatistics(): void {
    this.unsaved = 0;
    writeU64(this.dv, this.ctl + Control.CONSUMER_NEXT_SEQUENCE, this.seqHi * 2 ** 32 + this.seqLo);
    writeU64(this.dv, this.ctl + Control.CONSUMER_FRAMES, this.frames);
    writeU64(this.dv, this.ctl + Control.CONSUMER_BYTES, this.bytes);
  }
}
