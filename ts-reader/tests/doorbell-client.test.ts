/**
 * The doorbell client (src/ring/doorbell.ts) against a plain Unix socket server standing in for the worker's
 * doorbell: every byte written reaches `onRing` (as counts per read, rings coalescing), nothing after
 * `close()`, and a socket that cannot be connected is reported once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DoorbellClient } from '../src/ring/doorbell.ts';
import { sleep, waitFor } from './support/adapter.ts';

/** A listening doorbell stand-in and the connection the client makes to it. */
async function bell(dir: string): Promise<{ server: Server; path: string; peer: Promise<Socket> }> {
  const path = join(dir, 'bell.sock');
  let accepted: (socket: Socket) => void = () => {};
  const peer = new Promise<Socket>((resolve) => {
    accepted = resolve;
  });
  const server = createServer((socket) => accepted(socket));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, path, peer };
}

describe('DoorbellClient', () => {
  it('hands every byte to onRing as counts per read, and nothing after close()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasker-doorbell-client-'));
    const { server, path, peer } = await bell(dir);
    try {
      const reads: number[] = [];
      const errors: unknown[] = [];
      const client = new DoorbellClient(
        path,
        (bytes) => reads.push(bytes),
        (error) => errors.push(error),
      );
      const socket = await peer;
      socket.on('error', () => {}); // the write after close() may fail with EPIPE
      for (let i = 0; i < 3; i++) {
        socket.write(Uint8Array.of(1));
        await waitFor(`ring ${i + 1}`, () => reads.length === i + 1, 10_000);
      }
      socket.write(Uint8Array.of(1, 1, 1, 1, 1)); // five rings at once: they may coalesce
      const total = () => reads.reduce((a, b) => a + b, 0);
      await waitFor('eight bytes', () => total() === 8, 10_000);
      assert.deepEqual(reads.slice(0, 3), [1, 1, 1]);
      assert.equal(client.rings, reads.length, 'one ring counted per read');
      assert.ok(client.connected);
      client.close();
      assert.equal(client.connected, false);
      socket.write(Uint8Array.of(1), () => {});
      await sleep(50);
      assert.equal(total(), 8, 'nothing reaches onRing after close()');
      assert.deepEqual(errors, [], 'a clean connection reports nothing');
      socket.destroy();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a socket that cannot be connected is reported once, and never rings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasker-doorbell-client-'));
    try {
      const errors: unknown[] = [];
      let rings = 0;
      const client = new DoorbellClient(
        join(dir, 'nobody-listens.sock'),
        () => {
          rings += 1;
        },
        (error) => errors.push(error),
      );
      await waitFor('the connection error', () => errors.length > 0, 10_000);
      await sleep(20);
      assert.equal(errors.length, 1);
      assert.ok(client.error, 'the last error is kept');
      assert.equal(rings, 0);
      client.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
