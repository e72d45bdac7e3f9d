/**
 * Offsets and constants of a tasker-ring region (layout-spec.md sections 3-7). Readers take every ring
 * offset from the header and the descriptor table; only the fixed header fields and the control-block line
 * offsets (which are relative to a control block) are constants.
 */

/** Layout version this package speaks (layout-spec.md section 16). */
export const LAYOUT_MAJOR = 1;
/**
 * The minor this package speaks. It reads any minor of its major; the 1.1 words (the consumer's claim and
 * `claiming_identity`) and records (GIVE_BACK, CHECKPOINT) are used only on a region whose `layout_minor`
 * is at least 1 (`supportsClaims`).
 */
export const LAYOUT_MINOR = 1;
/** The first `layout_minor` with claims, the seal and the GIVE_BACK / CHECKPOINT records (section 16). */
const MINOR_CLAIMS = 1;

/** `TSKRRING` as the two little-endian u32 halves of the magic. */
export const MAGIC_LO = 0x524b5354; // "TSKR"
export const MAGIC_HI = 0x474e4952; // "RING"
/** `RDY!` as a little-endian u32 (header offset 12). */
export const READY_VALUE = 0x21594452;
/** Feature bits this reader knows (none in 1.0). */
export const KNOWN_FEATURES = 0n;

/** Region header fields (section 3.1), file offsets. */
export const Header = {
  MAGIC: 0,
  LAYOUT_MAJOR: 8,
  LAYOUT_MINOR: 10,
  READY: 12,
  FEATURE_BITS: 16,
  HEADER_SIZE: 24,
  RING_COUNT: 28,
  REGION_SIZE: 32,
  MAX_FRAME_SIZE: 40,
  MAX_MESSAGE_SIZE: 48,
  CREATOR_PID: 56,
  CREATOR_START_TIME: 64,
  CREATED_AT_UNIX_MS: 72,
  RING_TABLE: 128,
  RING_ENTRY_SIZE: 32,
  MIN_SIZE: 4096,
} as const;

/** Ring descriptor fields (section 3.2), relative to the entry. */
export const Descriptor = {
  CONTROL_OFFSET: 0,
  DATA_OFFSET: 8,
  CAPACITY: 16,
  RING_ID: 20,
  INITIAL_POSITION: 24,
} as const;

/** Control block lines and fields (section 4), relative to the control block. */
export const Control = {
  SIZE: 1024,
  PRODUCER_POSITION: 0,
  CONSUMER_POSITION: 128,
  /**
   * Line 1 (1.1): the consumer's claim, a position (multiple of 8) plus bit 0 `SEALED`. Consumer: CAS
   * forward before delivering; producer: one atomic OR of `SEALED` (section 9.5). Reserved on minor 0.
   */
  CONSUMER_CLAIM: 132,
  CONSUMER_SLEEPING: 256,
  /** Line 3: producer statistics. */
  CACHED_CONSUMER_POSITION: 384,
  PRODUCER_OPEN_MESSAGE: 388,
  PRODUCER_NEXT_SEQUENCE: 392,
  PRODUCER_FRAMES: 400,
  PRODUCER_BYTES: 408,
  PRODUCER_PADS: 416,
  PRODUCER_FULL_STALLS: 424,
  PRODUCER_DOORBELLS: 432,
  /** Line 4: consumer statistics. */
  CACHED_PRODUCER_POSITION: 512,
  CONSUMER_OPEN_MESSAGE: 516,
  CONSUMER_NEXT_SEQUENCE: 520,
  CONSUMER_FRAMES: 528,
  CONSUMER_BYTES: 536,
  CONSUMER_SLEEPS: 544,
  /** Lines 5 and 6: role holders (identity u64, start_time u64, heartbeat_unix_ms u64). */
  PRODUCER_PEER: 640,
  CONSUMER_PEER: 768,
  PEER_IDENTITY: 0,
  PEER_START_TIME: 8,
  PEER_HEARTBEAT: 16,
  /**
   * Line 6 (1.1): the identity word of the consumer that claims before delivering; a single 64-bit SeqCst
   * store at take (`BigInt64Array` + `Atomics.store`), 0 before the role is released. Reserved on minor 0.
   */
  CLAIMING_IDENTITY: 792,
} as const;

/** Bit 0 of `consumer_claim`: set once by the producer when it seals the ring, never cleared (section 8.1). */
export const CLAIM_SEALED = 1;

/** Record types (section 7). */
export const RecordType = {
  PADDING: 0x0001,
  STEP_EVENT: 0x0010,
  COMPLETION: 0x0011,
  NOOP: 0x8000,
  /** 1.1, completions ring: `k * 36` bytes of event ids the consumer read and will not run. */
  GIVE_BACK: 0x8012,
  /** 1.1, completions ring: 36 bytes of event id, then the UTF-8 JSON object of the step's checkpoint. */
  CHECKPOINT: 0x8013,
  SKIPPABLE_FIRST: 0x8000,
} as const;

/** Fragment flags (section 6.1). */
export const Flags = {
  BEGIN: 0x0001,
  END: 0x0002,
  ABORT: 0x0004,
  UNFRAGMENTED: 0x0003,
  KNOWN: 0x0007,
} as const;

/** Frame header size (section 6.1); frames are 8-byte aligned (`align8`). */
export const FRAME_HEADER = 16;
/** Completion and checkpoint payloads start with the 36 ASCII bytes of the event id; a GIVE_BACK payload
 * is a whole number of them (section 7). */
export const COMPLETION_ID_LEN = 36;

/** Whether a region of this `layout_minor` has the 1.1 words and takes the 1.1 records (section 16). */
export function supportsClaims(layoutMinor: number): boolean {
  return layoutMinor >= MINOR_CLAIMS;
}

export const MIN_CAPACITY = 64;
export const MAX_CAPACITY = 2 ** 30;
export const MIN_MAX_FRAME = 32;

/** `align8(n)`: a record's footprint. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Reads a u64 field as a JS number: exact below 2^53, so for statistics only (section 9.4). Never for a
 * sequence: those are compared as two u32 halves (`sequence.ts`).
 */
export function readU64(dv: DataView, offset: number): number {
  return dv.getUint32(offset, true) + dv.getUint32(offset + 4, true) * 2 ** 32;
}

/** Writes a JS number (an integer below 2^53) as a u64 field, low half first. Plain stores. */
export function writeU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, value >>> 0, true);
  dv.setUint32(offset + 4, Math.floor(value / 2 ** 32) >>> 0, true);
}

/** Writes a JS number (an integer below 2^53) as a u64 field at byte `offset` (a multiple of 8) through a
 * host-order `Uint32Array` (the host is little-endian: checked at attach). Plain stores. */
export function storeU64(u32: Uint32Array, offset: number, value: number): void {
  const i = offset >> 2;
  u32[i] = value >>> 0;
  u32[i + 1] = Math.floor(value / 2 ** 32) >>> 0;
}

/** Whether this host stores multi-byte integers little-endian (the layout's byte order, section 1). */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
