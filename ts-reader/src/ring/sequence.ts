/**
 * Exact 64-bit record sequences in JS (layout-spec.md section 9.4). A double is exact only below 2^53 and an
 * abort marker may restart a ring's sequence anywhere, so a sequence is kept as two u32 halves, compared half
 * by half, incremented with a carry, and reported as a `bigint` or a decimal string: never a rounded number.
 */

/** A u64 as its two u32 halves (`lo` bits 0-31, `hi` bits 32-63), each in 0 ..= 2^32 - 1. */
export interface Sequence {
  lo: number;
  hi: number;
}

/** The halves as one exact `bigint`. */
export function sequenceBigInt(lo: number, hi: number): bigint {
  return hi === 0 ? BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** The halves as an exact decimal string (for error messages). */
export function sequenceString(lo: number, hi: number): string {
  return sequenceBigInt(lo, hi).toString();
}

/** `seq + 1` in place, with the carry into the high half (wraps at 2^64, as the u64 does). */
export function incrementSequence(seq: Sequence): void {
  seq.lo = (seq.lo + 1) >>> 0;
  if (seq.lo === 0) seq.hi = (seq.hi + 1) >>> 0;
}

/** Reads the u64 at byte `offset` (a multiple of 8) through a host-order (little-endian) `Uint32Array`. */
export function loadSequence(u32: Uint32Array, offset: number, into: Sequence): void {
  const i = offset >> 2;
  into.lo = (u32[i] as number) >>> 0;
  into.hi = (u32[i + 1] as number) >>> 0;
}

/** Writes the u64 at byte `offset` (a multiple of 8), low half first. Plain stores. */
export function storeSequence(u32: Uint32Array, offset: number, seq: Sequence): void {
  const i = offset >> 2;
  u32[i] = seq.lo;
  u32[i + 1] = seq.hi;
}
