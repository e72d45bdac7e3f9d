/**
 * Layout 1.1 on the JS side, against regions built in JS memory: exact 64-bit sequences (layout-spec.md
 * section 9.4), the consumer's claim and the producer's seal (sections 4, 8.1, 9.5, 12), the GIVE_BACK and
 * CHECKPOINT records byte for byte (section 7), and a minor-0 region left as 1.0 left it (section 16).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RingReadError, RingSealedError, UnsupportedByWorkerError } from '../src/errors.ts';
import { CLAIM_SEALED, Control, Flags, RecordType } from '../src/ring/layout.ts';
import { RingReader } from '../src/ring/reader.ts';
import { attachRegion, type RegionViews } from '../src/ring/region.ts';
import { ownIdentity } from '../src/ring/role.ts';
import { RingTransport } from '../src/ring/transport.ts';
import { RingWriter } from '../src/ring/writer.ts';
import { buildRegion, publishEvents, writeRawRecord } from './support/region-builder.ts';

const enc = new TextEncoder();
const TWO_53 = 2n ** 53n;
const ID_A = '0190f3a2-7c1e-7b3a-9d2e-00000000000a';
const ID_B = '0190f3a2-7c1e-7b3a-9d2e-00000000000b';
const ID_C = '0190f3a2-7c1e-7b3a-9d2e-00000000000c';

/** An events-ring step event of `n` (its JSON payload). */
function stepEvent(n: number): Uint8Array {
  return enc.encode(JSON.stringify({ event_id: `0190f3a2-7c1e-7b3a-9d2e-${String(n).padStart(12, '0')}`, n }));
}

/** Writes records with consecutive sequences from `first` (one raw record each) and returns the end. */
function writeEvents(buffer: ArrayBuffer, pos: number, first: bigint, count: number): number {
  let at = pos;
  for (let i = 0; i < count; i++) {
    const payload = stepEvent(i);
    at = writeRawRecord(buffer, at, 16 + payload.length, RecordType.STEP_EVENT, Flags.UNFRAGMENTED, first + BigInt(i), payload);
  }
  return at;
}

const word = {
  claim: (views: RegionViews, control: number) => Atomics.load(views.i32, (control + Control.CONSUMER_CLAIM) >> 2) >>> 0,
  claiming: (views: RegionViews, control: number) => BigInt.asUintN(64, Atomics.load(views.i64, (control + Control.CLAIMING_IDENTITY) >> 3)),
  identity: (views: RegionViews, control: number) =>
    BigInt.asUintN(64, Atomics.load(views.i64, (control + Control.CONSUMER_PEER + Control.PEER_IDENTITY) >> 3)),
  consumer: (views: RegionViews, control: number) => Atomics.load(views.i32, (control + Control.CONSUMER_POSITION) >> 2) >>> 0,
  producer: (views: RegionViews, control: number) => Atomics.load(views.i32, (control + Control.PRODUCER_POSITION) >> 2) >>> 0,
  seal: (views: RegionViews, control: number) => Atomics.or(views.i32, (control + Control.CONSUMER_CLAIM) >> 2, CLAIM_SEALED),
};

describe('exact 64-bit sequences (layout-spec.md 9.4)', () => {
  it('reads a ring whose sequences start at 2^53 - 2 (an abort marker) and run past 2^53', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const reader = new RingReader(views, views.events);
    let pos = writeRawRecord(buffer, 0, 16, RecordType.NOOP, Flags.END | Flags.ABORT, TWO_53 - 2n);
    pos = writeEvents(buffer, pos, TWO_53 - 1n, 5); // 2^53 - 1 ..= 2^53 + 3
    publishEvents(buffer, pos);
    const got: bigint[] = [];
    for (let m = reader.next(); m !== null; m = reader.next()) got.push(m.sequence);
    assert.deepEqual(got, [TWO_53 - 1n, TWO_53, TWO_53 + 1n, TWO_53 + 2n, TWO_53 + 3n]);
    assert.equal(views.dv.getBigUint64(views.events.control + Control.CONSUMER_NEXT_SEQUENCE, true), TWO_53 + 4n, "line 4's next_sequence, exact");
    assert.equal(word.consumer(views, views.events.control), pos);
  });

  it('detects a replayed record above 2^53 (equal as doubles, different as u64s), naming both exactly', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const reader = new RingReader(views, views.events);
    let pos = writeRawRecord(buffer, 0, 16, RecordType.NOOP, Flags.END | Flags.ABORT, TWO_53);
    pos = writeEvents(buffer, pos, TWO_53 + 1n, 1);
    const replay = pos;
    pos = writeEvents(buffer, pos, TWO_53 + 1n, 1); // 2^53 + 2 expected
    publishEvents(buffer, pos);
    assert.equal(reader.next()?.sequence, TWO_53 + 1n);
    assert.throws(
      () => reader.next(),
      (e: unknown) =>
        e instanceof RingReadError &&
        e.code === 'SEQUENCE_GAP' &&
        e.position === replay &&
        e.message.includes(`expected sequence ${TWO_53 + 2n}, found ${TWO_53 + 1n}`),
    );
  });

  it('the completions writer continues an exact sequence above 2^53 from line 3', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const control = views.completions.control;
    views.dv.setBigUint64(control + Control.PRODUCER_NEXT_SEQUENCE, TWO_53 + 1n, true);
    const writer = new RingWriter(views, views.completions);
    assert.ok(writer.offer(writer.prepare(RecordType.COMPLETION, ID_A, '{}')));
    assert.ok(writer.offer(writer.prepare(RecordType.COMPLETION, ID_B, '{}')));
    assert.equal(views.dv.getBigUint64(views.completions.data + 8, true), TWO_53 + 1n);
    assert.equal(views.dv.getBigUint64(views.completions.data + 56 + 8, true), TWO_53 + 2n, 'the second record, after the 56-byte first');
    assert.equal(views.dv.getBigUint64(control + Control.PRODUCER_NEXT_SEQUENCE, true), TWO_53 + 3n);
  });
});

describe('the claim and the seal (layout-spec.md 9.5, 8.1, 12)', () => {
  it('at take: declares claiming_identity (= its identity word) and resets a claim a dead predecessor left ahead', () => {
    const buffer = buildRegion({ initialPosition: 2 ** 32 - 64 });
    const views = attachRegion(buffer);
    const control = views.events.control;
    Atomics.store(views.i32, (control + Control.CONSUMER_CLAIM) >> 2, (2 ** 32 - 64 + 96) | 0); // claimed past the position
    const reader = new RingReader(views, views.events);
    assert.equal(word.claiming(views, control), ownIdentity().word);
    assert.equal(word.claiming(views, control), word.identity(views, control));
    assert.equal(word.claim(views, control), 2 ** 32 - 64, 'the claim is back at consumer_position');
    reader.close();
    assert.equal(word.claiming(views, control), 0n, 'cleared at role release');
    assert.equal(word.identity(views, control), 0n);
  });

  it('claims every message before it is returned, across the u32 wrap and for fragments; never behind the position', () => {
    const buffer = buildRegion({ eventsCapacity: 1024, completionsCapacity: 1024, maxFrameSize: 128, initialPosition: 2 ** 32 - 512 });
    const views = attachRegion(buffer);
    const control = views.events.control;
    const writer = new RingWriter(views, views.events, 'events');
    const reader = new RingReader(views, views.events);
    const texts = Array.from({ length: 40 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(i % 3 === 0 ? 300 : 10) }));
    let received = 0;
    for (const text of texts) {
      const message = writer.prepare(RecordType.STEP_EVENT, '', text);
      while (!writer.offer(message)) {
        const m = reader.next();
        // Fragments of a streamed message are claimed as they are released: the claim is never behind.
        assert.equal(word.claim(views, control), word.consumer(views, control));
        if (m !== null) assert.equal(m.text, texts[received++]);
      }
      const m = reader.next();
      if (m !== null) {
        assert.equal(m.text, texts[received++]);
        // Returned to the caller: the message is claimed (claim = its end = the released position).
        assert.equal(word.claim(views, control), word.consumer(views, control));
        assert.equal(word.claim(views, control), word.producer(views, control));
      }
    }
    assert.equal(received, texts.length);
    assert.ok(word.claim(views, control) < 2 ** 31, 'the positions wrapped past 2^32');
  });

  it('a transport claims an event before nextEvent() hands it to the caller', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const control = views.events.control;
    const end = writeEvents(buffer, 0, 0n, 2);
    publishEvents(buffer, end);
    const transport = new RingTransport(buffer);
    const first = transport.nextEvent();
    assert.equal(first?.n, 0);
    const firstEnd = word.consumer(views, control);
    assert.ok(firstEnd > 0 && firstEnd < end);
    assert.equal(word.claim(views, control), firstEnd, 'claimed up to the first event only');
    assert.equal(transport.nextEvent()?.n, 1);
    assert.equal(word.claim(views, control), end);
    transport.close();
  });

  it('sealed between reads: the undelivered message is dropped, its bytes released, RING_SEALED from then on', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const control = views.events.control;
    const end = writeEvents(buffer, 0, 0n, 3);
    publishEvents(buffer, end);
    const reader = new RingReader(views, views.events);
    assert.equal(reader.next()?.sequence, 0n);
    const claimed = word.claim(views, control);
    word.seal(views, control); // the producer's fetch_or(SEALED)
    assert.throws(
      () => reader.next(),
      (e: unknown) => e instanceof RingSealedError && e.code === 'RING_SEALED',
    );
    assert.equal(word.claim(views, control), claimed | CLAIM_SEALED, 'the claim did not move past the seal; SEALED stays');
    assert.ok(word.consumer(views, control) > claimed, 'the dropped message was released as usual');
    assert.ok(word.consumer(views, control) <= end);
    assert.throws(() => reader.next(), RingSealedError, 'sticky');
    assert.throws(() => reader.checkSealed(), RingSealedError);
    assert.equal(reader.prepareSleep(), false, 'a sealed reader never asks for a doorbell');
    reader.close();
    assert.equal(word.claiming(views, control), 0n);
  });

  it('sealed before the take: nothing is delivered, nothing released', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const control = views.events.control;
    publishEvents(buffer, writeEvents(buffer, 0, 0n, 2));
    word.seal(views, control);
    const reader = new RingReader(views, views.events);
    assert.throws(() => reader.next(), RingSealedError);
    assert.equal(word.consumer(views, control), 0);
    assert.equal(word.claim(views, control), CLAIM_SEALED);
  });

  it('sealed with nothing to read: the transport finds it on its maintenance tick', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const transport = new RingTransport(buffer);
    assert.equal(transport.nextEvent(), null);
    transport.maintain();
    word.seal(views, views.events.control);
    assert.throws(
      () => transport.maintain(),
      (e: unknown) => e instanceof RingSealedError && e.code === 'RING_SEALED',
    );
    transport.close();
  });

  it('a claim word someone else wrote is CLAIM_CORRUPT: fatal, sticky, nothing released', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const control = views.events.control;
    publishEvents(buffer, writeEvents(buffer, 0, 0n, 1));
    const reader = new RingReader(views, views.events);
    Atomics.store(views.i32, (control + Control.CONSUMER_CLAIM) >> 2, 4096);
    assert.throws(
      () => reader.next(),
      (e: unknown) => e instanceof RingReadError && e.code === 'CLAIM_CORRUPT' && /0x1000/.test(e.message),
    );
    assert.throws(
      () => reader.next(),
      (e: unknown) => e instanceof RingReadError && e.code === 'CLAIM_CORRUPT',
    );
    assert.equal(word.consumer(views, control), 0);
  });
});

describe('a minor-0 region (layout-spec.md 16: a 1.1 reader on a 1.0 creator)', () => {
  it('never touches the 1.1 words: they stay as the creator left them, even a stray SEALED bit', () => {
    for (const stray of [0, CLAIM_SEALED]) {
      const buffer = buildRegion({ layoutMinor: 0, initialPosition: 2 ** 32 - 2048 });
      const views = attachRegion(buffer);
      assert.equal(views.layoutMinor, 0);
      for (const ring of [views.events, views.completions]) Atomics.store(views.i32, (ring.control + Control.CONSUMER_CLAIM) >> 2, stray);
      const start = 2 ** 32 - 2048;
      const end = writeEvents(buffer, start, 0n, 3);
      publishEvents(buffer, end);
      const transport = new RingTransport(buffer);
      for (let i = 0; i < 3; i++) assert.equal(transport.nextEvent()?.n, i, 'delivered without claims');
      transport.complete(ID_A, '{}');
      transport.maintain();
      transport.close();
      for (const ring of [views.events, views.completions]) {
        assert.equal(word.claim(views, ring.control), stray, 'consumer_claim untouched');
        assert.equal(word.claiming(views, ring.control), 0n, 'claiming_identity untouched');
      }
      assert.equal(word.consumer(views, views.events.control), end);
    }
  });

  it('refuses the 1.1 records with UNSUPPORTED_BY_WORKER and writes nothing', () => {
    const buffer = buildRegion({ layoutMinor: 0 });
    const views = attachRegion(buffer);
    const transport = new RingTransport(buffer);
    const unsupported = (feature: string) => (e: unknown) =>
      e instanceof UnsupportedByWorkerError && e.code === 'UNSUPPORTED_BY_WORKER' && e.feature === feature;
    assert.throws(() => transport.giveBack([ID_A]), unsupported('give_back'));
    assert.throws(() => transport.checkpoint(ID_A, '{"cursor":1}'), unsupported('checkpoint'));
    assert.equal(word.producer(views, views.completions.control), 0, 'nothing published');
    assert.equal(transport.queuedCount(), 0, 'nothing queued');
    transport.close();
  });
});

/** The completions ring's records from position 0 to the producer position: header fields and payload. */
function frames(views: RegionViews): { length: number; type: number; flags: number; sequence: bigint; payload: string }[] {
  const { data, capacity, control } = views.completions;
  const end = word.producer(views, control);
  const out = [];
  for (let pos = 0; pos !== end; ) {
    const at = data + (pos & (capacity - 1));
    const length = views.dv.getUint32(at, true);
    const type = views.dv.getUint16(at + 4, true);
    const flags = views.dv.getUint16(at + 6, true);
    if (type === RecordType.PADDING) {
      pos += length;
      continue;
    }
    const sequence = views.dv.getBigUint64(at + 8, true);
    const payload = new TextDecoder().decode(views.u8.subarray(at + 16, at + length));
    for (let z = at + length; z < at + ((length + 7) & ~7); z++) assert.equal(views.u8[z], 0, 'zero fill to the footprint');
    out.push({ length, type, flags, sequence, payload });
    pos += (length + 7) & ~7;
  }
  return out;
}

describe('GIVE_BACK and CHECKPOINT records, byte for byte (layout-spec.md 7)', () => {
  it('GIVE_BACK: the ids back to back (k * 36 bytes) in one record; CHECKPOINT: the id, then the JSON object', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const transport = new RingTransport(buffer);
    transport.complete(ID_C, '{"success":true}');
    transport.giveBack([ID_A, ID_B]);
    const checkpoint = '{"step_uuid":"s","cursor":{"page":3},"items_processed":120}';
    transport.checkpoint(ID_C, checkpoint);
    const got = frames(views);
    assert.deepEqual(got, [
      { length: 16 + 36 + 16, type: RecordType.COMPLETION, flags: Flags.UNFRAGMENTED, sequence: 0n, payload: `${ID_C}{"success":true}` },
      { length: 16 + 72, type: 0x8012, flags: Flags.UNFRAGMENTED, sequence: 1n, payload: ID_A + ID_B },
      { length: 16 + 36 + checkpoint.length, type: 0x8013, flags: Flags.UNFRAGMENTED, sequence: 2n, payload: ID_C + checkpoint },
    ]);
    // The first GIVE_BACK header, raw: length 88, type 0x8012, flags BEGIN|END, sequence 1.
    const at = views.completions.data + 72;
    assert.deepEqual([...views.u8.subarray(at, at + 16)], [88, 0, 0, 0, 0x12, 0x80, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    transport.close();
  });

  it('a GIVE_BACK larger than a frame is fragmented (BEGIN, middle, END of type 0x8012)', () => {
    const buffer = buildRegion({ eventsCapacity: 4096, completionsCapacity: 4096, maxFrameSize: 64 });
    const views = attachRegion(buffer);
    const transport = new RingTransport(buffer);
    transport.giveBack([ID_A, ID_B, ID_C]); // 108 bytes, 48 per frame
    const got = frames(views);
    assert.deepEqual(
      got.map((f) => [f.type, f.flags, f.length, f.sequence]),
      [
        [0x8012, Flags.BEGIN, 64, 0n],
        [0x8012, 0, 64, 1n],
        [0x8012, Flags.END, 16 + 12, 2n],
      ],
    );
    assert.equal(got.map((f) => f.payload).join(''), ID_A + ID_B + ID_C);
    transport.close();
  });

  it('more ids than max_message_size / 36 go out as several GIVE_BACK records, in order; bad ids send nothing', () => {
    const buffer = buildRegion({ maxMessageSize: 100, maxFrameSize: 96 });
    const views = attachRegion(buffer);
    const transport = new RingTransport(buffer);
    const ids = Array.from({ length: 5 }, (_, i) => `0190f3a2-7c1e-7b3a-9d2e-00000000010${i}`);
    assert.throws(() => transport.giveBack([ID_A, 'not-an-id']), /canonical/);
    assert.equal(word.producer(views, views.completions.control), 0);
    transport.giveBack(ids);
    assert.deepEqual(
      frames(views).map((f) => f.payload),
      [ids.slice(0, 2).join(''), ids.slice(2, 4).join(''), ids.slice(4).join('')],
    );
    transport.close();
  });

  it('a reader of the completions ring skips them (types at or above 0x8000)', () => {
    const buffer = buildRegion();
    const views = attachRegion(buffer);
    const writer = new RingWriter(views, views.completions);
    assert.ok(writer.offer(writer.prepareGiveBack([ID_A])));
    assert.ok(writer.offer(writer.prepareCheckpoint(ID_A, '{}')));
    assert.ok(writer.offer(writer.prepare(RecordType.COMPLETION, ID_B, '{}')));
    const reader = new RingReader(views, views.completions, 'completions');
    assert.equal(reader.next()?.text, `${ID_B}{}`);
  });
});
