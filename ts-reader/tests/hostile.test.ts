/**
 * Hostile bytes on the TS side (issue 8, item 3): fast-check drives seeds through the same corrupt-region
 * generator as the Rust test (`tests/hostile.rs`, "hostile-v1": splitmix64, 1-4 corruptions of six kinds
 * applied to `fixtures/hostile-base.ring`); the golden hashes in `fixtures/hostile-golden.json` prove both
 * implementations make the same images. Each image is attached as a region in JS memory, its events are
 * read and a completion is written: every failure must be a typed `FfiError` (a `RangeError` or
 * `TypeError` from an unchecked offset would fail the property).
 * Runs: `FAST_CHECK_RUNS` (default 1000; the long form runs 1 000 000).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EventDecodeError, FfiError, RingSealedError } from '../src/ffi/errors.ts';
import { CLAIM_SEALED, Control, Header } from '../src/ring/layout.ts';
import { RingTransport } from '../src/ring/transport.ts';

const base = new Uint8Array(readFileSync(new URL('../../fixtures/hostile-base.ring', import.meta.url)));
const golden = JSON.parse(readFileSync(new URL('../../fixtures/hostile-golden.json', import.meta.url), 'utf8')) as {
  generator: string;
  base_fnv1a64: string;
  cases: { seed: number; fnv1a64: string }[];
};
const runs = Number(process.env.FAST_CHECK_RUNS ?? 1000);

// ---- the generator (hostile-v1; tests/hostile.rs is the reference) --------------------------------

const M64 = (1n << 64n) - 1n;

class SplitMix {
  private s: bigint;
  constructor(seed: bigint) {
    this.s = seed & M64;
  }
  next(): bigint {
    this.s = (this.s + 0x9e3779b97f4a7c15n) & M64;
    let z = this.s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  }
  below(n: number): number {
    return Number(this.next() % BigInt(n));
  }
  byte(): number {
    return Number(this.next() & 0xffn);
  }
}

const BOUNDARY = [0, 1, 7, 8, 15, 16, 31, 32, 63, 64, 128, 255, 256, 1024, 4095, 4096, 4097, 0x7fffffff, 0x80000000, 0xfffffff8, 0xffffffff];
const HEADER_FIELDS = [8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 52, 56];
for (const ring of [0, 1]) for (const o of [0, 4, 8, 12, 16, 20, 24]) HEADER_FIELDS.push(128 + 32 * ring + o);
const CONTROL_WORDS = [0, 128, 256, 384, 388, 392, 512, 516, 520, 524, 640, 644, 768, 772];
const FRAME_WORDS = [0, 4, 8];

function boundary(r: SplitMix): number {
  const i = r.below(BOUNDARY.length + 1);
  return i < BOUNDARY.length ? (BOUNDARY[i] as number) : Number(r.next() & 0xffffffffn);
}

function putU32(img: Uint8Array, off: number, v: number): void {
  if (off + 4 <= img.length) new DataView(img.buffer, img.byteOffset, img.length).setUint32(off, v >>> 0, true);
}

function mutate(from: Uint8Array, seed: bigint): Uint8Array {
  const dv = new DataView(from.buffer, from.byteOffset, from.length);
  const rings = [0, 1].map((i) => {
    const d = 128 + 32 * i;
    return { control: Number(dv.getBigUint64(d, true)), data: Number(dv.getBigUint64(d + 8, true)), capacity: dv.getUint32(d + 16, true) };
  });
  const r = new SplitMix(seed);
  let img = from.slice();
  const n = 1 + r.below(4);
  for (let k = 0; k < n; k++) {
    const kind = r.below(6);
    const len = img.length;
    if (kind === 0 && len > 0) {
      const off = r.below(len);
      img[off] = r.byte();
    } else if (kind === 1) {
      const off = HEADER_FIELDS[r.below(HEADER_FIELDS.length)] as number;
      putU32(img, off, boundary(r));
    } else if (kind === 2) {
      const ring = rings[r.below(2)] as { control: number };
      const off = ring.control + (CONTROL_WORDS[r.below(CONTROL_WORDS.length)] as number);
      putU32(img, off, boundary(r));
    } else if (kind === 3) {
      const ring = rings[r.below(2)] as { data: number; capacity: number };
      const off = ring.data + 8 * r.below(ring.capacity / 8) + (FRAME_WORDS[r.below(FRAME_WORDS.length)] as number);
      putU32(img, off, boundary(r));
    } else if (kind === 4) {
      img = img.slice(0, r.below(len + 1));
    } else if (kind === 5 && len > 0) {
      const off = r.below(len);
      const run = 1 + r.below(64);
      for (let i = off; i < Math.min(off + run, len); i++) img[i] = r.byte();
    }
  }
  return img;
}

function fnv1a64(bytes: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return h.toString(16).padStart(16, '0');
}

// ---- the oracle -------------------------------------------------------------------------------------

function typed(error: unknown, where: string): void {
  if (!(error instanceof FfiError)) {
    throw new Error(`${where}: an untyped ${(error as Error)?.name ?? typeof error}: ${(error as Error)?.message ?? error}`);
  }
}

/** Attaches the image as a region, reads its events and writes a completion; returns what happened. */
function exercise(img: Uint8Array): string {
  const buffer = new ArrayBuffer(img.length);
  new Uint8Array(buffer).set(img);
  return exerciseBuffer(buffer);
}

/** `exercise` on a buffer the caller keeps (to look at the words afterwards). */
function exerciseBuffer(buffer: ArrayBuffer): string {
  let transport: RingTransport;
  try {
    transport = new RingTransport(buffer);
  } catch (error) {
    typed(error, 'attach');
    return `attach: ${(error as FfiError).code}`;
  }
  let outcome = 'attached';
  try {
    for (let i = 0; i < 1000; i++) {
      try {
        if (transport.nextEvent() === null) break;
      } catch (error) {
        typed(error, 'read');
        if (!(error instanceof EventDecodeError)) throw error; // the ring itself is unusable
        outcome += ' decode-error';
      }
    }
    transport.maintain();
  } catch (error) {
    outcome += error instanceof RingSealedError ? ' sealed' : ' read-error';
  }
  try {
    transport.complete('0192f0c1-7a1b-7c3d-8e4f-a5b6c7d8e9f0', '{"success":true}');
    transport.flush();
  } catch (error) {
    typed(error, 'write');
    outcome += ' write-error';
  }
  transport.close();
  return outcome;
}

describe('hostile regions (the hostile-v1 generator shared with tests/hostile.rs)', () => {
  it('makes the same images as the Rust generator (golden hashes)', () => {
    assert.equal(golden.generator, 'hostile-v1');
    assert.equal(fnv1a64(base), golden.base_fnv1a64, 'fixtures/hostile-base.ring is the one the hashes were made from');
    for (const c of golden.cases) assert.equal(fnv1a64(mutate(base, BigInt(c.seed))), c.fnv1a64, `seed ${c.seed}`);
  });

  it('the uncorrupted base attaches and reads whole', () => {
    assert.equal(exercise(base), 'attached');
  });

  it(`every corrupted region gives a typed error or valid data (${runs} cases)`, { timeout: 3_600_000 }, () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: M64 }), (seed) => {
        exercise(mutate(base, seed));
      }),
      { numRuns: runs },
    );
  });
});

// ---- layout 1.1's words (sections 4, 9.5, 16) -----------------------------------------------------------

/** The events ring's control block offset as the image's descriptor says (a mutation may have moved it). */
function eventsControl(img: Uint8Array): number {
  return img.length < 136 ? -1 : Number(new DataView(img.buffer, img.byteOffset, img.length).getBigUint64(128, true));
}
const EVENTS_CONTROL = eventsControl(base);

interface Words11 {
  minor: number;
  claim: number;
  claiming: bigint;
}

/** The base image as a region of `minor`, with the events ring's claim and claiming_identity set. */
function withWords(img: Uint8Array, control: number, words: Words11): ArrayBuffer {
  const buffer = new ArrayBuffer(img.length);
  new Uint8Array(buffer).set(img);
  const dv = new DataView(buffer);
  dv.setUint16(Header.LAYOUT_MINOR, words.minor, true);
  dv.setUint32(control + Control.CONSUMER_CLAIM, words.claim >>> 0, true);
  dv.setBigUint64(control + Control.CLAIMING_IDENTITY, words.claiming, true);
  return buffer;
}

const u32At = (buffer: ArrayBuffer, offset: number) => new DataView(buffer).getUint32(offset, true);

describe('hostile 1.1 words: the claim and claiming_identity', () => {
  const consumer = u32At(base.buffer.slice(0), EVENTS_CONTROL + Control.CONSUMER_POSITION);
  const producer = u32At(base.buffer.slice(0), EVENTS_CONTROL + Control.PRODUCER_POSITION);
  const claimValue = fc.oneof(
    fc.constantFrom(consumer, consumer | CLAIM_SEALED, producer, producer | CLAIM_SEALED, 0, CLAIM_SEALED, 0xffffffff, 0xfffffff8),
    fc.integer({ min: 0, max: 0xffffffff }),
  );
  const words = fc.record({ minor: fc.constantFrom(0, 1, 2, 0xffff), claim: claimValue, claiming: fc.bigInt({ min: 0n, max: M64 }) });

  it(`any claim word: a typed error or valid data; SEALED is never cleared; a minor-0 region's words untouched (${runs} cases)`, () => {
    fc.assert(
      fc.property(words, fc.option(fc.bigInt({ min: 0n, max: M64 })), (w, seed) => {
        const img = seed === null ? base : mutate(base, seed);
        const control = eventsControl(img);
        // Truncated before the words, or a descriptor that moved them out of line: the test above has these.
        if (control < 0 || control % 128 !== 0 || control + Control.SIZE > img.length) return;
        const buffer = withWords(img, control, w);
        const outcome = exerciseBuffer(buffer);
        const claim = u32At(buffer, control + Control.CONSUMER_CLAIM);
        const claiming = new DataView(buffer).getBigUint64(control + Control.CLAIMING_IDENTITY, true);
        const minor = new DataView(buffer).getUint16(Header.LAYOUT_MINOR, true);
        const untouched = claim === w.claim >>> 0 && claiming === w.claiming;
        if (minor === 0 || (outcome.startsWith('attach:') && outcome !== 'attach: ROLE_TAKEN')) {
          // A 1.0 region, or one refused before any role was taken: the words are nobody's to write.
          assert.ok(untouched, `${outcome}: consumer_claim and claiming_identity untouched`);
          return;
        }
        if (outcome === 'attach: ROLE_TAKEN' && untouched) return; // the consumer role itself was refused
        if ((w.claim & CLAIM_SEALED) !== 0) {
          assert.ok((claim & CLAIM_SEALED) !== 0, 'SEALED is never cleared');
          assert.ok(!outcome.includes('decode-error'), 'nothing is delivered from a ring sealed before the take');
        }
        assert.equal(claiming, 0n, 'claiming_identity is cleared when the role is released');
        if (outcome === 'attached' && (claim & CLAIM_SEALED) === 0) {
          const position = u32At(buffer, control + Control.CONSUMER_POSITION);
          assert.equal(claim, position, 'a clean read leaves the claim at the released position: never behind, never ahead');
        }
      }),
      { numRuns: runs },
    );
  });

  it('the base image as 1.1 reads whole and claims everything; sealed, it delivers nothing', () => {
    const open = withWords(base, EVENTS_CONTROL, { minor: 1, claim: consumer, claiming: 0n });
    assert.equal(exerciseBuffer(open), 'attached');
    assert.equal(u32At(open, EVENTS_CONTROL + Control.CONSUMER_CLAIM), producer);
    const sealed = withWords(base, EVENTS_CONTROL, { minor: 1, claim: consumer | CLAIM_SEALED, claiming: 0n });
    assert.equal(exerciseBuffer(sealed), 'attached sealed');
    assert.equal(u32At(sealed, EVENTS_CONTROL + Control.CONSUMER_POSITION), consumer, 'nothing released');
  });
});
