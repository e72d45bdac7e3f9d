/**
 * Attaching to a region mapping handed over by the cdylib: the checks of layout-spec.md section 11.2
 * (A5-A17, with the mapping's length as the file size), in order, each failure a typed `RingAttachError`.
 * The views created here are private to the ring modules: no view of shared memory reaches user code.
 */
import { RingAttachError } from '../errors.ts';
import {
  Control,
  Descriptor,
  Header,
  HOST_IS_LITTLE_ENDIAN,
  KNOWN_FEATURES,
  LAYOUT_MAJOR,
  MAGIC_HI,
  MAGIC_LO,
  MAX_CAPACITY,
  MIN_CAPACITY,
  MIN_MAX_FRAME,
  READY_VALUE,
  readU64,
} from './layout.ts';

/** Where one ring lives in the region (from its descriptor). */
export interface RingGeometry {
  /** File offset of the control block. */
  readonly control: number;
  /** File offset of the data area. */
  readonly data: number;
  /** Data area size: a power of two in 64 ..= 2^30. */
  readonly capacity: number;
  readonly initialPosition: number;
}

/** The checked header of a region, with the views every ring module reads through. */
export interface RegionViews {
  readonly buffer: ArrayBuffer;
  /** Positions and flags: `Atomics` only. */
  readonly i32: Int32Array;
  /** Identity words (64-bit CAS at role take). */
  readonly i64: BigInt64Array;
  /** Headers, statistics. */
  readonly dv: DataView;
  /** Payload bytes. */
  readonly u8: Uint8Array;
  /** Frame headers and statistics in host order (little-endian, checked at attach): cheaper than DataView. */
  readonly u32: Uint32Array;
  readonly layoutMajor: number;
  readonly layoutMinor: number;
  readonly headerSize: number;
  readonly regionSize: number;
  readonly maxFrameSize: number;
  readonly maxMessageSize: number;
  readonly creatorPid: number;
  readonly creatorStartTime: number;
  readonly createdAtUnixMs: number;
  readonly events: RingGeometry;
  readonly completions: RingGeometry;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function align128(n: number): number {
  return Math.ceil(n / 128) * 128;
}

/**
 * Applies A3-A17 to a mapping of `buffer.byteLength` bytes and returns the views. Reads `ready` first
 * with `Atomics.load` (A5: pairs with the creator's Release store of the ready word, so every header byte
 * read after it is the creator's).
 */
export function attachRegion(buffer: ArrayBuffer): RegionViews {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new RingAttachError('BAD_HEADER', 'this host is big-endian; tasker-ring regions are little-endian (layout-spec.md section 1)');
  }
  const fileSize = buffer.byteLength;
  if (fileSize < Header.MIN_SIZE) {
    throw new RingAttachError('TRUNCATED', `mapping is ${fileSize} bytes, a region needs at least ${Header.MIN_SIZE}`);
  }
  // Int32Array and BigInt64Array need lengths that are multiples of 4 and 8; the header page always is.
  const i32 = new Int32Array(buffer, 0, Math.floor(fileSize / 4));
  const i64 = new BigInt64Array(buffer, 0, Math.floor(fileSize / 8));
  const dv = new DataView(buffer);
  const u8 = new Uint8Array(buffer);
  const u32 = new Uint32Array(buffer, 0, Math.floor(fileSize / 4));
  // A5: Acquire load of `ready` (pairs with the creator's Release store, section 11.1 step 5).
  const ready = Atomics.load(i32, Header.READY >> 2) >>> 0;
  if (dv.getUint32(Header.MAGIC, true) !== MAGIC_LO || dv.getUint32(Header.MAGIC + 4, true) !== MAGIC_HI) {
    throw new RingAttachError('BAD_MAGIC', 'the mapping does not start with TSKRRING: not a tasker-ring region');
  }
  if (ready === 0) {
    throw new RingAttachError('NOT_READY', 'the creator is still initialising the region; retry later');
  }
  if (ready !== READY_VALUE) {
    throw new RingAttachError('BAD_HEADER', `ready word is 0x${ready.toString(16)}, expected 0x${READY_VALUE.toString(16)}`);
  }
  const layoutMajor = dv.getUint16(Header.LAYOUT_MAJOR, true);
  const layoutMinor = dv.getUint16(Header.LAYOUT_MINOR, true);
  if (layoutMajor !== LAYOUT_MAJOR) {
    throw new RingAttachError(
      'UNSUPPORTED_MAJOR',
      `region layout is ${layoutMajor}.${layoutMinor}; this package reads layout ${LAYOUT_MAJOR}.x only (upgrade @tasker-systems/worker and libtasker_worker together)`,
    );
  }
  const features = dv.getBigUint64(Header.FEATURE_BITS, true);
  if ((features & ~KNOWN_FEATURES) !== 0n) {
    throw new RingAttachError('UNKNOWN_FEATURES', `region uses feature bits 0x${features.toString(16)} this reader does not know`);
  }
  const headerSize = dv.getUint32(Header.HEADER_SIZE, true);
  if (headerSize < Header.MIN_SIZE || headerSize % 4096 !== 0) {
    throw new RingAttachError('BAD_HEADER', `header_size ${headerSize} is not a multiple of 4096 of at least 4096`);
  }
  const ringCount = dv.getUint32(Header.RING_COUNT, true);
  if (ringCount < 2) {
    throw new RingAttachError('BAD_HEADER', `ring_count ${ringCount} < 2`);
  }
  const regionSize = readU64(dv, Header.REGION_SIZE);
  if (regionSize > fileSize) {
    throw new RingAttachError('TRUNCATED', `region_size ${regionSize} > mapping ${fileSize}`);
  }
  if (regionSize < fileSize) {
    throw new RingAttachError('SIZE_MISMATCH', `region_size ${regionSize} < mapping ${fileSize}`);
  }
  const tableEnd = align128(Header.RING_TABLE + Header.RING_ENTRY_SIZE * ringCount);
  const ring = (index: number): RingGeometry => {
    const entry = Header.RING_TABLE + Header.RING_ENTRY_SIZE * index;
    if (entry + Header.RING_ENTRY_SIZE > headerSize) {
      throw new RingAttachError('BAD_HEADER', `ring descriptor ${index} lies outside the header`);
    }
    const control = readU64(dv, entry + Descriptor.CONTROL_OFFSET);
    const data = readU64(dv, entry + Descriptor.DATA_OFFSET);
    const capacity = dv.getUint32(entry + Descriptor.CAPACITY, true);
    const ringId = dv.getUint32(entry + Descriptor.RING_ID, true);
    const initialPosition = dv.getUint32(entry + Descriptor.INITIAL_POSITION, true);
    const bad = (why: string) => new RingAttachError('BAD_HEADER', `ring ${index}: ${why}`);
    if (ringId !== index) throw bad(`ring_id ${ringId} != ${index}`);
    if (!isPowerOfTwo(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY) {
      throw bad(`capacity ${capacity} is not a power of two in ${MIN_CAPACITY}..=${MAX_CAPACITY}`);
    }
    if (control % 128 !== 0 || control < tableEnd || control + Control.SIZE > headerSize) {
      throw bad(`control_offset ${control} is not a multiple of 128 in ${tableEnd}..=${headerSize - Control.SIZE}`);
    }
    if (data % 128 !== 0 || data < headerSize || data + capacity > regionSize) {
      throw bad(`data_offset ${data} (+ capacity ${capacity}) outside ${headerSize}..${regionSize}`);
    }
    if (initialPosition % 8 !== 0) throw bad(`initial_position ${initialPosition} is not a multiple of 8`);
    return { control, data, capacity, initialPosition };
  };
  const events = ring(0);
  const completions = ring(1);
  const overlaps = (a: number, alen: number, b: number, blen: number) => a < b + blen && b < a + alen;
  if (overlaps(events.data, events.capacity, completions.data, completions.capacity)) {
    throw new RingAttachError('BAD_HEADER', 'the two data areas overlap');
  }
  if (overlaps(events.control, Control.SIZE, completions.control, Control.SIZE)) {
    throw new RingAttachError('BAD_HEADER', 'the two control blocks overlap');
  }
  const maxFrameSize = dv.getUint32(Header.MAX_FRAME_SIZE, true);
  const smaller = Math.min(events.capacity, completions.capacity);
  if (maxFrameSize % 8 !== 0 || maxFrameSize < MIN_MAX_FRAME || maxFrameSize > smaller / 2) {
    throw new RingAttachError('BAD_HEADER', `max_frame_size ${maxFrameSize} is not a multiple of 8 in ${MIN_MAX_FRAME}..=${smaller / 2}`);
  }
  const maxMessageSize = readU64(dv, Header.MAX_MESSAGE_SIZE);
  if (maxMessageSize < maxFrameSize - 16) {
    throw new RingAttachError('BAD_HEADER', `max_message_size ${maxMessageSize} < max_frame_size - 16`);
  }
  return {
    buffer,
    i32,
    i64,
    dv,
    u8,
    u32,
    layoutMajor,
    layoutMinor,
    headerSize,
    regionSize,
    maxFrameSize,
    maxMessageSize,
    creatorPid: dv.getUint32(Header.CREATOR_PID, true),
    creatorStartTime: readU64(dv, Header.CREATOR_START_TIME),
    createdAtUnixMs: readU64(dv, Header.CREATED_AT_UNIX_MS),
    events,
    completions,
  };
}
