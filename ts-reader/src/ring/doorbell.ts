/**
 * The doorbell (layout-spec.md section 10): a Unix stream socket owned by the Rust worker. The Rust side
 * writes one byte per wake-up only while the consumer's sleeping flag is set; JS reads and discards the
 * bytes and polls. Unreferenced: it never keeps the process alive.
 *
 * The bytes are read with `net.connect`'s `onread` (one preallocated buffer, the callback called from the
 * socket's read itself) rather than `data` events (a Buffer per read, then the stream's push and emit). On a
 * busy 2-core VM (end-to-end.ts --legs, interleaved runs) the doorbell write -> callback leg of the idle wake
 * fell by 40-120 us p50 on Node and Deno, but part of it came back in the JSON.parse right after (it now
 * runs on colder caches), so the whole wake moved less (Deno -40 to -80 us p50, Node and Bun within noise).
 *
 * A socket that cannot be used is not fatal (the poller's regular tick still polls), but it is reported
 * once, as a typed `DoorbellError`: Deno refuses the connection (`NotCapable`) without `--allow-write`
 * (and `--allow-read`, `--allow-net`), and for a socket under /dev (the default /dev/shm) without `-A`.
 */
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { DoorbellError } from '../errors.ts';

/** Deno's refusal of a permission it was not given (`Deno.errors.NotCapable`, `PermissionDenied` before Deno 2). */
function isPermissionRefusal(error: unknown): boolean {
  const e = error as { name?: unknown; message?: unknown } | null;
  return e !== null && (e.name === 'NotCapable' || e.name === 'PermissionDenied' || /requires (write|read) access/i.test(String(e.message)));
}

/** What Deno needs to open the socket at `path`, from its refusal. */
function denoHint(path: string, message: string): string {
  if (/all access/i.test(message) || path.startsWith('/dev/')) {
    return 'Deno 2 asks for all permissions (-A) for anything under /dev, where the socket is; or give the worker a region_dir outside /dev and allow --allow-read, --allow-write and --allow-net';
  }
  return 'a Unix socket needs --allow-read, --allow-write and --allow-net in Deno (or -A)';
}

/** The typed form of a doorbell failure; `fallbackMs` is the tick the poller falls back to. */
export function doorbellError(path: string, error: unknown, fallbackMs: number): DoorbellError {
  const fallback = `polling falls back to the ${fallbackMs} ms tick, so an event that arrives while the poller is idle waits up to ${fallbackMs} ms`;
  const why = (error as Error)?.message ?? String(error);
  if (isPermissionRefusal(error)) {
    return new DoorbellError(
      'DOORBELL_NOT_PERMITTED',
      path,
      `the doorbell socket ${path} may not be opened (${why}): ${denoHint(path, why)}; ${fallback}`,
      error,
    );
  }
  return new DoorbellError('DOORBELL_UNAVAILABLE', path, `the doorbell socket ${path} cannot be used (${why}); ${fallback}`, error);
}

/** Bytes taken per read: rings are one byte each, so this only bounds how many coalesce into one callback. */
const READ_BUFFER = 256;

export class DoorbellClient {
  private socket: Socket | null;
  private closed = false;
  /** Last error, if the socket failed (the poller falls back to its regular tick). */
  error: Error | null = null;
  rings = 0;

  /**
   * `onRing` is called once per read, with the number of bytes read (rings that came before the read
   * coalesce into one call). `onError` is called once, when the socket cannot be connected (never after
   * `close()`). A connection the worker closes later (it stopped) is not reported: the poller learns that
   * from the worker itself.
   */
  constructor(path: string, onRing: (bytes: number) => void, onError: (error: unknown) => void = () => {}) {
    let opened = false;
    const socket = connect({
      path,
      onread: {
        buffer: Buffer.alloc(READ_BUFFER),
        callback: (bytes: number) => {
          if (this.closed) return false;
          this.rings += 1;
          onRing(bytes);
          return true;
        },
      },
    });
    socket.unref();
    socket.on('connect', () => {
      opened = true;
    });
    socket.on('error', (error) => {
      const first = this.error === null;
      this.error = error;
      if (first && !opened && !this.closed) onError(error);
    });
    socket.on('close', () => {
      this.socket = null;
    });
    this.socket = socket;
  }

  get connected(): boolean {
    return this.socket !== null && !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    this.socket = null;
  }
}
