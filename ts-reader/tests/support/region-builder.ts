/**
 * Builds a tasker-ring region in JS memory, byte for byte as layout-spec.md section 11.1 describes, so
 * reader tests can run without the native library and can corrupt any field.
 */
import { Control, Descriptor, Header, LAYOUT_MINOR, READY_VALUE, writeU64 } from '../../src/ring/layout.ts';

export interface BuildOptions {
  eventsCapacity?: number;
  completionsCapacity?: number;
  maxFrameSize?: number;
  maxMessageSize?: number;
  initialPosition?: number;
  layoutMajor?: number;
  /** Default: the minor this package speaks (1: the claim word starts at `initialPosition`). */
  layoutMinor?: number;
  ready?: number;
}

export function buildRegion(options: BuildOptions = {}): ArrayBuffer {
  const eventsCapacity = options.eventsCapacity ?? 64 * 1024;
  const completionsCapacity = options.completionsCapacity ?? 16 * 1024;
  const maxFrame = options.maxFrameSize ?? Math.min(eventsCapacity, completionsCapacity) / 2;
  const maxMessage = options.maxMessageSize ?? 1 << 20;
  const initial = options.initialPosition ?? 0;
  const round = (n: number) => Math.ceil(n / 4096) * 4096;
  const size = 4096 + round(eventsCapacity) + round(completionsCapacity);
  const buffer = new ArrayBuffer(size);
  const dv = new DataView(buffer);
  const u8 = new Uint8Array(buffer);
  u8.set(new TextEncoder().encode('TSKRRING'), 0);
  dv.setUint16(Header.LAYOUT_MAJOR, options.layoutMajor ?? 1, true);
  const minor = options.layoutMinor ?? LAYOUT_MINOR;
  dv.setUint16(Header.LAYOUT_MINOR, minor, true);
  dv.setUint32(Header.HEADER_SIZE, 4096, true);
  dv.setUint32(Header.RING_COUNT, 2, true);
  writeU64(dv, Header.REGION_SIZE, size);
  dv.setUint32(Header.MAX_FRAME_SIZE, maxFrame, true);
  writeU64(dv, Header.MAX_MESSAGE_SIZE, maxMessage);
  dv.setUint32(Header.CREATOR_PID, 1, true);
  const rings = [
    { control: 1024, data: 4096, capacity: eventsCapacity },
    { control: 2048, data: 4096 + round(eventsCapacity), capacity: completionsCapacity },
  ];
  rings.forEach((ring, i) => {
    const entry = Header.RING_TABLE + Header.RING_ENTRY_SIZE * i;
    writeU64(dv, entry + Descriptor.CONTROL_OFFSET, ring.control);
    writeU64(dv, entry + Descriptor.DATA_OFFSET, ring.data);
    dv.setUint32(entry + Descriptor.CAPACITY, ring.capacity, true);
    dv.setUint32(entry + Descriptor.RING_ID, i, true);
    dv.setUint32(entry + Descriptor.INITIAL_POSITION, initial >>> 0, true);
    for (const field of [Control.PRODUCER_POSITION, Control.CONSUMER_POSITION, Control.CACHED_CONSUMER_POSITION, Control.CACHED_PRODUCER_POSITION]) {
      dv.setUint32(ring.control + field, initial >>> 0, true);
    }
    // 1.1 (section 11.1 step 4): consumer_claim starts at initial_position; reserved (zero) on minor 0.
    if (minor >= 1) dv.setUint32(ring.control + Control.CONSUMER_CLAIM, initial >>> 0, true);
  });
  dv.setUint32(Header.READY, options.ready ?? READY_VALUE, true);
  return buffer;
}

/** Writes one raw record at ring position `pos` of the events ring (no checks: for corrupt-frame tests). */
export function writeRawRecord(
  buffer: ArrayBuffer,
  pos: number,
  length: number,
  type: number,
  flags: number,
  sequence: number | bigint,
  payload?: Uint8Array,
): number {
  const dv = new DataView(buffer);
  const capacity = dv.getUint32(Header.RING_TABLE + Descriptor.CAPACITY, true);
  const data = dv.getUint32(Header.RING_TABLE + Descriptor.DATA_OFFSET, true);
  const at = data + (pos & (capacity - 1));
  dv.setUint32(at, length >>> 0, true);
  dv.setUint16(at + 4, type, true);
  dv.setUint16(at + 6, flags, true);
  if (length >= 16 || length === 0) dv.setBigUint64(at + 8, BigInt(sequence), true);
  if (payload) new Uint8Array(buffer).set(payload, at + 16);
  return (pos + ((length + 7) & ~7)) >>> 0;
}

/** Publishes the events ring's producer position (as the producer's Release store would). */
export function publishEvents(buffer: ArrayBuffer, position: number): void {
  Atomics.store(new Int32Array(buffer), (1024 + Control.PRODUCER_POSITION) >> 2, position | 0);
}
