/**
 * The JS reader and writer against regions built in JS memory: round trips with padding, fragments and
 * the u32 wrap, and every typed error of layout-spec.md sections 9.2 and 11.2 on hand-made corrupt bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RingAttachError, RingPeerError, RingReadError, RingWriteError } from '../src/errors.ts';
import { Control, Flags, Header, RecordType } from '../src/ring/layout.ts';
import { RingReader } from '../src/ring/reader.ts';
import { attachRegion } from '../src/ring/region.ts';
import { RingWriter } from '../src/ring/writer.ts';
import { buildRegion, publishEvents, writeRawRecord } from './support/region-builder.ts';

const enc = new TextEncoder();

/** A writer on the events ring (the role Rust normally holds) and a reader on it. */
function pair(options: Parameters<typeof buildRegion>[0] = {}) {
  const views = attachRegion(buildRegion(options));
  const writer = new RingWriter(views, views.events, 'events');
  const reader = new RingReader(views, views.events, 'events');
  return { views, writer, reader };
}

/** The read fails with `code` (naming the offending record's `position` when given), and keeps failing. */
function expectRead(reader: RingReader, code: string, position?: number) {
  assert.throws(
    () => reader.next(),
    (error: unknown) => error instanceof RingReadError && error.code === code && (position === undefined || error.position === position),
  );
  // Sticky: the same error again.
  assert.throws(
    () => reader.next(),
    (error: unknown) => error instanceof RingReadError && error.code === code,
  );
}

describe('ring round trips', () => {
  it('delivers messages in order across padding and the u32 wrap, with fragments', () => {
    const { writer, reader, views } = pair({ eventsCapacity: 4096, completionsCapacity: 4096, maxFrameSize: 512, initialPosition: 2 ** 32 - 2048 });
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const sent: string[] = [];
    let received = 0;
    for (let i = 0; i < 3000; i++) {
      const size = rand() % 7 === 0 ? 600 + (rand() % 3000) : rand() % 400;
      const text = JSON.stringify({ i, pad: 'é'.repeat(size >> 1) + 'x'.repeat(size & 1) });
      sent.push(text);
      const message = writer.prepare(RecordType.STEP_EVENT, '', text); // a stalled message is offered again as is
      let stalls = 0;
      while (!writer.offer(message)) {
        // Full: read. A streamed message's fragments are consumed without a delivery until its END.
        const got = reader.next();
        if (got !== null) {
          assert.equal(got.text, sent[received]);
          received += 1;
        }
        stalls += 1;
        assert.ok(stalls < 100, 'the writer makes progress once the reader reads');
      }
    }
    for (let m = reader.next(); m !== null; m = reader.next()) {
      assert.equal(m.text, sent[received]);
      received += 1;
    }
    assert.equal(received, sent.length);
    const pos = Atomics.load(views.i32, (views.events.control + Control.CONSUMER_POSITION) >> 2) >>> 0;
    assert.ok(pos < 2 ** 31, `the positions wrapped past 2^32 (now ${pos})`);
    assert.equal(reader.next(), null);
  });

  it('streams a message larger than the ring through it', () => {
    const { writer, reader } = pair({ eventsCapacity: 1024, completionsCapacity: 1024, maxFrameSize: 256 });
    const big = JSON.stringify({ data: 'y'.repeat(20_000) });
    const message = writer.prepare(RecordType.STEP_EVENT, '', big);
    let got: string | null = null;
    let rounds = 0;
    while (!writer.offer(message)) {
      const m = reader.next();
      assert.equal(m, null, 'fragments are released, not delivered, until the END');
      rounds += 1;
      assert.ok(rounds < 1000);
    }
    got = reader.next()?.text ?? null;
    assert.equal(got, big);
    assert.ok(rounds > 10, `the message needed many offers (${rounds})`);
  });

  it('puts the completion id in front of the JSON', () => {
    const views = attachRegion(buildRegion());
    const writer = new RingWriter(views, views.completions);
    const reader = new RingReader(views, views.completions, 'completions');
    const id = '0190f3a2-7c1e-7b3a-9d2e-000000000001';
    assert.ok(writer.offer(writer.prepare(RecordType.COMPLETION, id, '{"success":true}')));
    const m = reader.next();
    assert.equal(m?.type, RecordType.COMPLETION);
    assert.equal(m?.text, `${id}{"success":true}`);
  });

  it('refuses a message over max_message_size before writing', () => {
    const { writer } = pair({ maxFrameSize: 256, maxMessageSize: 1000 });
    assert.throws(
      () => writer.prepare(RecordType.STEP_EVENT, '', 'z'.repeat(1001)),
      (e: unknown) => e instanceof RingWriteError && e.code === 'MESSAGE_TOO_LARGE',
    );
  });

  it('skips NOOP records and abort markers, and discards an aborted partial message', () => {
    const buffer = buildRegion({ maxFrameSize: 64 });
    const views = attachRegion(buffer);
    const reader = new RingReader(views, views.events);
    const p = enc.encode('{"a":1}');
    let pos = 0;
    pos = writeRawRecord(buffer, pos, 16 + 4, RecordType.NOOP, Flags.UNFRAGMENTED, 0, enc.encode('skip'));
    pos = writeRawRecord(buffer, pos, 16 + 7, RecordType.STEP_EVENT, Flags.BEGIN, 1, p);
    pos = writeRawRecord(buffer, pos, 16, RecordType.NOOP, Flags.END | Flags.ABORT, 2);
    pos = writeRawRecord(buffer, pos, 16 + 7, RecordType.STEP_EVENT, Flags.UNFRAGMENTED, 3, p);
    publishEvents(buffer, pos);
    const m = reader.next();
    assert.equal(m?.text, '{"a":1}');
    assert.equal(m?.sequence, 3n);
    assert.equal(reader.next(), null);
  });

  it('refuses to take a role a live process holds, and gives it back on close', () => {
    const views = attachRegion(buildRegion());
    const reader = new RingReader(views, views.events);
    assert.throws(
      () => new RingReader(views, views.events),
      (e: unknown) => e instanceof RingPeerError && e.code === 'ROLE_TAKEN',
    );
    reader.close();
    reader.close(); // idempotent
    assert.throws(
      () => reader.next(),
      (e: unknown) => e instanceof RingPeerError && e.code === 'CLOSED',
    );
    const again = new RingReader(views, views.events);
    assert.equal(again.next(), null);
  });

  it('takes over a role from a dead process and skips its partial message', () => {
    const buffer = buildRegion({ maxFrameSize: 64 });
    const views = attachRegion(buffer);
    // A consumer identity of a pid that cannot exist (pid_max is below 2^22).
    const dead = BigInt(0x3fffffff);
    Atomics.store(views.i64, (views.events.control + Control.CONSUMER_PEER) >> 3, dead);
    const p = enc.encode('{"b":2}');
    let pos = 0;
    pos = writeRawRecord(buffer, pos, 16 + 7, RecordType.STEP_EVENT, Flags.END, 41, p); // tail of a message
    pos = writeRawRecord(buffer, pos, 16 + 7, RecordType.STEP_EVENT, Flags.UNFRAGMENTED, 42, p);
    publishEvents(buffer, pos);
    const reader = new RingReader(views, views.events);
    const m = reader.next();
    assert.equal(m?.text, '{"b":2}');
    assert.equal(m?.sequence, 42n);
  });
});

describe('corrupt frames give typed, sticky errors', () => {
  const cases: Array<[string, (buffer: ArrayBuffer) => number]> = [
    ['LENGTH_TOO_SMALL', (b) => writeRawRecord(b, 0, 8, RecordType.STEP_EVENT, 3, 0) + 8],
    [
      'FRAME_TOO_LARGE',
      (b) => {
        writeRawRecord(b, 0, 100_000, RecordType.STEP_EVENT, 3, 0);
        return 64;
      },
    ],
    [
      'LENGTH_PAST_PUBLISHED',
      (b) => {
        writeRawRecord(b, 0, 64, RecordType.STEP_EVENT, 3, 0);
        return 32;
      },
    ],
    ['UNKNOWN_RECORD_TYPE', (b) => writeRawRecord(b, 0, 24, 0x0100, 3, 0)],
    ['UNKNOWN_FLAGS', (b) => writeRawRecord(b, 0, 24, RecordType.STEP_EVENT, 0x0013, 0)],
    ['FRAGMENT_OUT_OF_ORDER', (b) => writeRawRecord(b, 0, 24, RecordType.STEP_EVENT, Flags.END, 0)],
    ['FRAGMENT_OUT_OF_ORDER at 24', (b) => writeRawRecord(b, writeRawRecord(b, 0, 24, RecordType.STEP_EVENT, 3, 0), 24, RecordType.STEP_EVENT, Flags.END, 1)],
    ['FRAGMENT_OUT_OF_ORDER', (b) => writeRawRecord(b, 0, 24, RecordType.NOOP, Flags.ABORT, 0)],
    ['SEQUENCE_GAP', (b) => writeRawRecord(b, 0, 24, RecordType.STEP_EVENT, 3, 7)],
    ['BAD_PADDING', (b) => writeRawRecord(b, 0, 16, RecordType.PADDING, 0, 0)],
    ['MISALIGNED', () => 12],
    ['POSITIONS_CORRUPT', () => 2 ** 31],
  ];
  for (const [name, corrupt] of cases) {
    it(name, () => {
      const buffer = buildRegion({ eventsCapacity: 4096, completionsCapacity: 4096, maxFrameSize: 1024 });
      const views = attachRegion(buffer);
      const reader = new RingReader(views, views.events);
      publishEvents(buffer, corrupt(buffer));
      // `CODE at N`: the error names the offending record's position N (after a good record at 0).
      const [code = name, at] = name.split(' at ');
      if (at !== undefined) assert.equal(reader.next()?.sequence, 0n);
      expectRead(reader, code, at === undefined ? undefined : Number(at));
    });
  }

  it('STRADDLES: a record running past the ring end', () => {
    const buffer = buildRegion({ eventsCapacity: 4096, completionsCapacity: 4096, maxFrameSize: 1024, initialPosition: 4096 - 32 });
    const views = attachRegion(buffer);
    const reader = new RingReader(views, views.events);
    writeRawRecord(buffer, 4096 - 32, 48, RecordType.STEP_EVENT, 3, 0);
    publishEvents(buffer, 4096 + 64);
    expectRead(reader, 'STRADDLES');
  });

  it('MESSAGE_TOO_LARGE: reassembly past max_message_size', () => {
    const buffer = buildRegion({ maxFrameSize: 64, maxMessageSize: 60 });
    const views = attachRegion(buffer);
    const reader = new RingReader(views, views.events);
    const chunk = new Uint8Array(40);
    let pos = writeRawRecord(buffer, 0, 56, RecordType.STEP_EVENT, Flags.BEGIN, 0, chunk);
    const second = pos;
    pos = writeRawRecord(buffer, pos, 56, RecordType.STEP_EVENT, Flags.END, 1, chunk);
    publishEvents(buffer, pos);
    expectRead(reader, 'MESSAGE_TOO_LARGE', second); // the fragment that overflows, not the record after it
  });
});

describe('attach checks (layout-spec.md 11.2)', () => {
  const attachCode = (buffer: ArrayBuffer, code: string) =>
    assert.throws(
      () => attachRegion(buffer),
      (e: unknown) => e instanceof RingAttachError && e.code === code,
    );

  it('refuses a short mapping, a bad magic, an unready region and a newer major', () => {
    attachCode(new ArrayBuffer(100), 'TRUNCATED');
    const magic = buildRegion();
    new Uint8Array(magic)[0] = 0x58;
    attachCode(magic, 'BAD_MAGIC');
    attachCode(buildRegion({ ready: 0 }), 'NOT_READY');
    attachCode(buildRegion({ ready: 7 }), 'BAD_HEADER');
    attachCode(buildRegion({ layoutMajor: 2 }), 'UNSUPPORTED_MAJOR');
  });

  it('refuses unknown features, bad sizes and bad descriptors', () => {
    const poke = (f: (dv: DataView) => void) => {
      const b = buildRegion();
      f(new DataView(b));
      return b;
    };
    attachCode(
      poke((dv) => dv.setUint32(Header.FEATURE_BITS, 1, true)),
      'UNKNOWN_FEATURES',
    );
    attachCode(
      poke((dv) => dv.setUint32(Header.HEADER_SIZE, 100, true)),
      'BAD_HEADER',
    );
    attachCode(
      poke((dv) => dv.setUint32(Header.RING_COUNT, 1, true)),
      'BAD_HEADER',
    );
    attachCode(
      poke((dv) => dv.setUint32(Header.REGION_SIZE, dv.getUint32(Header.REGION_SIZE, true) + 4096, true)),
      'TRUNCATED',
    );
    attachCode(
      poke((dv) => dv.setUint32(Header.REGION_SIZE, 8192, true)),
      'SIZE_MISMATCH',
    );
    attachCode(
      poke((dv) => dv.setUint32(Header.RING_TABLE + 16, 1000, true)),
      'BAD_HEADER',
    ); // capacity
    attachCode(
      poke((dv) => dv.setUint32(Header.RING_TABLE + 20, 5, true)),
      'BAD_HEADER',
    ); // ring_id
    attachCode(
      poke((dv) => dv.setUint32(Header.RING_TABLE + 32 + 0, 1024, true)),
      'BAD_HEADER',
    ); // control overlap
    attachCode(
      poke((dv) => dv.setUint32(Header.RING_TABLE + 8, 0, true)),
      'BAD_HEADER',
    ); // data in header
    attachCode(
      poke((dv) => dv.setUint32(Header.MAX_FRAME_SIZE, 12, true)),
      'BAD_HEADER',
    );
    attachCode(
      poke((dv) => dv.setUint32(Header.MAX_MESSAGE_SIZE, 1, true)),
      'BAD_HEADER',
    );
  });

  it('survives random bytes: a typed error or a clean attach, never anything else', () => {
    let seed = 99;
    for (let i = 0; i < 2000; i++) {
      const b = buildRegion({ eventsCapacity: 4096, completionsCapacity: 4096 });
      const u8 = new Uint8Array(b);
      for (let k = 0; k < 4; k++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        u8[seed % 256] = seed & 0xff;
      }
      try {
        const views = attachRegion(b);
        const reader = new RingReader(views, views.events);
        // Random published garbage after a clean attach: typed read errors only.
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        for (let k = 0; k < 64; k++) u8[views.events.data + k] = (seed >> (k % 24)) & 0xff;
        publishEvents(b, (seed % 512) & ~7);
        try {
          while (reader.next() !== null) {
            /* keep reading */
          }
        } catch (error) {
          assert.ok(error instanceof RingReadError, String(error));
        }
      } catch (error) {
        assert.ok(error instanceof RingAttachError || error instanceof RingPeerError, String(error));
      }
    }
  });
});
