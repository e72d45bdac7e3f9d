/**
 * The seed's unified FFI adapter interface (all eleven methods), and the errors it throws.
 */
import type { BootstrapConfig, BootstrapResult, FfiDispatchMetrics, FfiStepEvent, WorkerStatus } from '../protocol.ts';

export { FfiCallError, FfiError, FfiLibraryError } from '../errors.ts';

export interface FfiAdapter {
  /** The next step event, or null if none is pending. On the ring transport: no FFI call. */
  pollStepEvents(): FfiStepEvent | null;
  /**
   * Sends a step's result. On the ring transport: no FFI call; never blocks, never drops. The seed's
   * signature; this package's adapters (`RingAwareAdapter`) return true when the result was taken and false
   * at once when the event is not in flight (never read, already completed, timed out).
   */
  completeStepEvent(eventId: string, resultJson: string): void;
  /** Starts the worker (and maps its region on the ring transport). */
  bootstrapWorker(config: BootstrapConfig): BootstrapResult;
  getWorkerStatus(): WorkerStatus;
  /** Stops the worker; returns the library's JSON answer. */
  stopWorker(): string;
  /** Begins a graceful shutdown; returns the library's JSON answer. */
  transitionToGracefulShutdown(): string;
  isWorkerRunning(): boolean;
  getFfiDispatchMetrics(): FfiDispatchMetrics;
  checkStarvationWarnings(): void;
  cleanupTimeouts(): void;
  /** Releases the region mapping (after closing its reader) and the library handle. Idempotent. */
  close(): void;
}
