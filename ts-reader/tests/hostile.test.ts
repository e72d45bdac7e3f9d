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
import { EventDecodeError, FfiError, RingSealedError } from '../src/errors.ts';
import { CLAIM_SEALED, Control, Header, RecordType } from '../src/ring/layout.ts';
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

// ---- boundary values (tests/boundary.rs is the reference: the same fields, values and cuts) ---------------

/** An integer field: file offset and width in bytes. */
type Field = [offset: number, width: number];

/** The edges of each width (0, 1, 2^15, 2^16, 2^31, 2^32, 2^53, 2^63, 2^64, each minus one), as far as it holds them. */
function edges(width: number): bigint[] {
  let v = [0n, 1n, (1n << 15n) - 1n, 1n << 15n, (1n << 16n) - 1n, (1n << 31n) - 1n, 1n << 31n, (1n << 32n) - 1n, 1n << 32n];
  v.push((1n << 53n) - 1n, 1n << 53n, (1n << 63n) - 1n, 1n << 63n, M64); // 2^64 itself wraps to 0, above
  if (width < 8) v = v.filter((x) => x < 1n << BigInt(8 * width));
  if (width !== 2) v = v.filter((x) => x !== 0x7fffn && x !== 0x8000n && x !== 0xffffn);
  return v;
}

/** Offsets near the end of a mapping of `len` bytes (for fields wide enough to hold them). */
function nearEnd(len: bigint): bigint[] {
  const v = [1n, 8n, 16n, 128n, 1024n, 4096n].filter((k) => k <= len).map((k) => len - k);
  return [...v, len, len + 1n, len + 8n, len + 128n];
}

function put(img: Uint8Array, [off, width]: Field, value: bigint): void {
  for (let i = 0; i < width; i++) img[off + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

function get(img: Uint8Array, [off, width]: Field): bigint {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(img[off + i] as number);
  return v;
}

/** The header's fields (layout-spec.md section 3), reserved words included. */
const HEADER_INTS: Field[] = [
  [8, 2],
  [10, 2],
  [12, 4],
  [16, 8],
  [24, 4],
  [28, 4],
  [32, 8],
  [40, 4],
  [44, 4],
  [48, 8],
  [56, 4],
  [60, 4],
  [64, 8],
  [72, 8],
];
/** A control block's words (section 4; 132 is 1.1's consumer_claim, 792 its claiming_identity); the first three are positions. */
const CONTROL_U32 = [0, 128, 132, 384, 256, 388, 512, 516];
const CONTROL_U64 = [392, 400, 408, 416, 424, 432, 520, 528, 536, 544, 640, 648, 656, 768, 776, 784, 792];

/** One ring of the base image: control block, data area, capacity, and its readable records (file offset, bytes to the data area's end). */
function ringLayout(img: Uint8Array, i: number) {
  const d = 128 + 32 * i;
  const control = Number(get(img, [d, 8]));
  const data = Number(get(img, [d + 8, 8]));
  const capacity = Number(get(img, [d + 16, 4]));
  let pos = Number(get(img, [control + 128, 4]));
  const end = Number(get(img, [control, 4]));
  const records: [number, number][] = [];
  while (pos !== end) {
    const at = pos & (capacity - 1);
    const off = data + at;
    records.push([off, capacity - at]);
    const step = Number(get(img, [off + 4, 2])) === RecordType.PADDING ? capacity - at : (Number(get(img, [off, 4])) + 7) & ~7;
    pos = (pos + step) >>> 0;
  }
  return { control, data, capacity, records };
}

/** Every case: (what, image). */
function boundaryCases(from: Uint8Array): [string, Uint8Array][] {
  const len = BigInt(from.length);
  const rings = [ringLayout(from, 0), ringLayout(from, 1)];
  const out: [string, Uint8Array][] = [];
  const set = (what: string, field: Field, values: bigint[]) => {
    const seen = new Set<bigint>();
    for (let v of values) {
      if (field[1] < 8) v &= (1n << BigInt(8 * field[1])) - 1n;
      if (seen.has(v)) continue;
      seen.add(v);
      const img = from.slice();
      put(img, field, v);
      out.push([`${what} = 0x${v.toString(16)}`, img]);
    }
  };
  const wide = (width: number) => (width >= 4 ? [...edges(width), ...nearEnd(len)] : edges(width));
  for (const f of HEADER_INTS) set(`header @${f[0]}`, f, wide(f[1]));
  rings.forEach((r, i) => {
    const d = 128 + 32 * i;
    const descriptor: Field[] = [
      [d, 8],
      [d + 8, 8],
      [d + 16, 4],
      [d + 20, 4],
      [d + 24, 4],
      [d + 28, 4],
    ];
    for (const f of descriptor) set(`descriptor ${i} @${f[0]}`, f, wide(f[1]));
    CONTROL_U32.forEach((word, n) => {
      const f: Field = [r.control + word, 4];
      const v = wide(4);
      if (n < 3) {
        // Positions: one, eight, a capacity and a capacity plus eight either side of their own value.
        const own = get(from, f);
        for (const k of [1n, 8n, BigInt(r.capacity), BigInt(r.capacity) + 8n]) v.push((own + k) & 0xffffffffn, (own - k) & 0xffffffffn);
      }
      set(`control ${i} +${word}`, f, v);
    });
    for (const word of CONTROL_U64) set(`control ${i} +${word}`, [r.control + word, 8], wide(8));
    r.records.forEach(([off, toEnd], n) => {
      const te = BigInt(toEnd);
      const cap = BigInt(r.capacity);
      set(`ring ${i} record ${n} length`, [off, 4], [...wide(4), te - 8n, te - 1n, te, te + 1n, te + 8n, cap, cap + 8n]);
      set(`ring ${i} record ${n} type`, [off + 4, 2], edges(2));
      set(`ring ${i} record ${n} flags`, [off + 6, 2], edges(2));
      set(`ring ${i} record ${n} sequence`, [off + 8, 8], edges(8));
    });
  });
  // The image cut just short of each data area's end and of the mapping's end.
  const cuts = new Set<bigint>(nearEnd(len).filter((c) => c < len));
  for (const r of rings) {
    const end = BigInt(r.data + r.capacity);
    for (const c of [end - 1n, end - 8n, end - 4096n]) if (c < len) cuts.add(c);
  }
  for (const c of [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) out.push([`cut at ${c}`, from.slice(0, Number(c))]);
  return out;
}

describe('boundary values (the enumeration of tests/boundary.rs)', () => {
  it('every integer field at every edge of its width, and offsets near the end: a typed error or valid data', () => {
    const cases = boundaryCases(base);
    assert.equal(cases.length, 1954, 'the same enumeration as tests/boundary.rs (1954 cases on this base image)');
    const records = ringLayout(base, 0).records.length + ringLayout(base, 1).records.length;
    assert.ok(records >= 8, `the base image's readable records were walked: ${records}`);
    const failures: string[] = [];
    const mix = new Map<string, number>();
    for (const [what, img] of cases) {
      const buffer = new ArrayBuffer(img.length);
      new Uint8Array(buffer).set(img);
      const control = eventsControl(img);
      const claimAt = control >= 0 && control + Control.SIZE <= img.length ? control + Control.CONSUMER_CLAIM : -1;
      const sealedBefore = claimAt >= 0 && (u32At(buffer, claimAt) & CLAIM_SEALED) !== 0;
      try {
        const outcome = exerciseBuffer(buffer);
        const kind = outcome.startsWith('attach:') ? 'attach error' : outcome;
        mix.set(kind, (mix.get(kind) ?? 0) + 1);
        if (sealedBefore && (u32At(buffer, claimAt) & CLAIM_SEALED) === 0) failures.push(`${what}: SEALED was cleared`);
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message}`);
      }
    }
    assert.deepEqual(failures, []);
    // The enumeration reaches every layer: a field list that stopped covering one would show here.
    const count = (pred: (kind: string) => boolean) => [...mix].filter(([k]) => pred(k)).reduce((n, [, c]) => n + c, 0);
    const shown = JSON.stringify(Object.fromEntries(mix));
    assert.ok(count((k) => k === 'attach error') > 0, shown);
    assert.ok(count((k) => k.includes('read-error')) > 0, shown);
    // No write-error here, unlike the Rust side: this writer reads only the consumer position of the
    // completions ring, and a corrupt one means "no room yet" (the completion waits in JS memory).
    assert.ok(count((k) => k === 'attached') > 0, shown);
    assert.ok(count((k) => k.includes('sealed')) > 0, `a claim word with SEALED set stops the reader: ${shown}`);
  });
});
