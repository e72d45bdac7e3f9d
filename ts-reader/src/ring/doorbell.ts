/**
 * The doorbell (layout-spec.md section 10): a Unix stream socket owned by the Rust worker. The Rust side
 * writes one byte per wake-up only while the consumer's sleeping flag is set; JS reads and discards the
 * bytes and polls. Unreferenced: it never keeps the process alive.
 */
import { connect, type Socket } from 'node:net';

export class DoorbellClient {
  private socket: Socket | null;
  private closed = false;
  /** Last error, if the socket failed (the poller falls back to its regular tick). */
  error: Error | null = null;
  rings = 0;

  constructor(path: string, onRing: () => void) {
    const socket = connect(path);
    socket.unref();
    socket.on('data', () => {
      this.rings += 1;
      onRing();
    });
    socket.on('error', (error) => {
      this.error = error;
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
    this.socket?.removeAllListeners('data');
    this.socket?.destroy();
    this.socket = null;
  }
}
