/**
 * The raw C ABI of libtasker_worker (`crates/tasker-worker-ffi/include/tasker_worker.h`) as each runtime's
 * FFI sees it. One implementation per runtime (koffi, bun:ffi, Deno.dlopen); everything above it is shared.
 * Every `char *` the library returns is read and freed here, inside the call: no pointer escapes.
 */

/** C functions that return a JSON `char *` (freed with `free_rust_string`), or NULL. */
export type JsonReturningSymbol =
  | 'get_worker_status'
  | 'stop_worker'
  | 'transition_to_graceful_shutdown'
  | 'get_ffi_dispatch_metrics'
  | 'poll_step_events'
  | 'poll_worker_logs'
  | 'poll_completion_refusals';

/**
 * A mapping handed out by `map_ring_region_handle` (or, from a library that predates it, `map_ring_region`):
 * release it with `releaseRingRegion(mapping)` exactly once, after the last use of `buffer`.
 */
export interface RegionMapping {
  readonly buffer: ArrayBuffer;
  /** The runtime's pointer value for the base (opaque to callers). */
  readonly base: unknown;
  /**
   * The library's handle for this mapping (counts up from 1, never reused: a stale one never releases a newer
   * mapping, even at the same address), or null when the library predates handles and the mapping is released
   * by its base address.
   */
  readonly handle: number | null;
}

export interface NativeLibrary {
  /** The file that was loaded. */
  readonly path: string;
  /** Calls a JSON-returning function; the string is copied and the C string freed before returning. */
  callJson(symbol: JsonReturningSymbol): string | null;
  bootstrapWorker(configJson: string): string | null;
  /** 1 accepted, 0 refused. */
  completeStepEvent(eventId: string, resultJson: string): number;
  /**
   * `give_back_step_event` (layout 1.1's per-poll path): 1 given back to the source without using an attempt,
   * 0 refused (not in flight). Null when the library predates it.
   */
  readonly giveBackStepEvent: ((eventId: string) => number) | null;
  /**
   * `checkpoint_yield_step_event`: 1 accepted (the step yields with this checkpoint), 0 refused. Null when the
   * library predates it.
   */
  readonly checkpointYieldStepEvent: ((eventId: string, checkpointJson: string) => number) | null;
  /**
   * `client_call`: a step-store client request `{"op","args"}` in, `{"success","data"|"error","recoverable"}`
   * out (JSON; the C string read and freed here). Null when the library predates it.
   */
  readonly clientCall: ((requestJson: string) => string | null) | null;
  /**
   * `log_message` into the worker core's tracing: level 0 error .. 4 trace, `fieldsJson` a JSON object or
   * null. Null when the library predates it.
   */
  readonly logMessage: ((level: number, message: string, fieldsJson: string | null) => number) | null;
  isWorkerRunning(): boolean;
  checkStarvationWarnings(): void;
  cleanupTimeouts(): void;
  /** `tasker_worker_abi_version()`, or null when the library predates it. */
  abiVersion(): number | null;
  /** Whether the library exports `poll_worker_logs`. */
  readonly hasLogs: boolean;
  /** Whether the library exports `poll_completion_refusals` (libraries before it: refusals in metrics only). */
  readonly hasRefusals: boolean;
  /** Whether the library hands out mapping handles (`map_ring_region_handle` / `release_ring_region_handle`). */
  readonly hasMappingHandles: boolean;
  /** A new mapping of the running ring worker's region (by handle when the library has them), or null. */
  mapRingRegion(): RegionMapping | null;
  /** Releases `mapping`: by its handle, or by its base when it has none. 1 released, 0 refused. */
  releaseRingRegion(mapping: RegionMapping): number;
  /** Unloads the library (only when no worker thread of it can still run). */
  unload(): void;
}

/** The symbols every runtime binds, with C signatures (koffi's syntax; the others mirror it). */
export const REQUIRED_SYMBOLS = [
  'bootstrap_worker',
  'get_worker_status',
  'stop_worker',
  'transition_to_graceful_shutdown',
  'is_worker_running',
  'get_ffi_dispatch_metrics',
  'check_starvation_warnings',
  'cleanup_timeouts',
  'free_rust_string',
  'poll_step_events',
  'complete_step_event',
  'map_ring_region',
  'release_ring_region',
] as const;
