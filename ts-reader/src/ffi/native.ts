/**
 * libtasker_worker's functions as the adapter calls them, over any runtime's binding of the C interface
 * (`symbols.ts`). Every `char *` the library returns is read and freed here, inside the call: no pointer escapes.
 */
import { type Binding, type C_SYMBOLS, isNullPointer, type SymbolName } from './symbols.ts';

/** C functions without arguments that return a JSON `char *` (freed with `free_rust_string`), or NULL. */
export type JsonReturningSymbol = {
  [K in SymbolName]: (typeof C_SYMBOLS)[K] extends { args: readonly []; returns: 'owned' } ? K : never;
}[SymbolName];

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
  /** Whether the library exports `poll_domain_events`. */
  readonly hasDomainEvents: boolean;
  /** Whether the library hands out mapping handles (`map_ring_region_handle` / `release_ring_region_handle`). */
  readonly hasMappingHandles: boolean;
  /** A new mapping of the running ring worker's region (by handle when the library has them), or null. */
  mapRingRegion(): RegionMapping | null;
  /** Releases `mapping`: by its handle, or by its base when it has none. 1 released, 0 refused. */
  releaseRingRegion(mapping: RegionMapping): number;
  /** Unloads the library (only when no worker thread of it can still run). */
  unload(): void;
}

/**
 * The library's functions over one runtime's `Binding`: the read-and-free of every returned string and the
 * region mapping, written once for Node, Bun and Deno.
 */
export function nativeLibrary(path: string, binding: Binding): NativeLibrary {
  const s = binding.symbols;
  const take = (pointer: unknown): string | null => {
    if (isNullPointer(pointer)) return null;
    try {
      return binding.readCString(pointer);
    } finally {
      s.free_rust_string(pointer);
    }
  };
  const mapHandle = s.map_ring_region_handle;
  const releaseHandle = s.release_ring_region_handle;
  // The handle pair, or (libraries before it) map_ring_region / release_ring_region, released by address.
  const handles = mapHandle !== null && releaseHandle !== null;
  const { give_back_step_event: giveBack, checkpoint_yield_step_event: checkpoint, tasker_worker_abi_version: abi, client_call: client, log_message: log } = s;
  return {
    path,
    hasLogs: s.poll_worker_logs !== null,
    hasRefusals: s.poll_completion_refusals !== null,
    hasDomainEvents: s.poll_domain_events !== null,
    hasMappingHandles: handles,
    callJson(symbol) {
      const fn = s[symbol];
      return fn ? take(fn()) : null;
    },
    bootstrapWorker: (configJson) => take(s.bootstrap_worker(binding.cstr(configJson))),
    completeStepEvent: (eventId, resultJson) => s.complete_step_event(binding.cstr(eventId), binding.cstr(resultJson)) as number,
    giveBackStepEvent: giveBack ? (eventId) => giveBack(binding.cstr(eventId)) as number : null,
    checkpointYieldStepEvent: checkpoint ? (eventId, json) => checkpoint(binding.cstr(eventId), binding.cstr(json)) as number : null,
    clientCall: client ? (requestJson) => take(client(binding.cstr(requestJson))) : null,
    logMessage: log ? (level, message, fieldsJson) => log(level, binding.cstr(message), fieldsJson === null ? null : binding.cstr(fieldsJson)) as number : null,
    isWorkerRunning: () => Boolean(s.is_worker_running()),
    checkStarvationWarnings: () => void s.check_starvation_warnings(),
    cleanupTimeouts: () => void s.cleanup_timeouts(),
    abiVersion: () => (abi ? (abi() as number) >>> 0 : null),
    mapRingRegion(): RegionMapping | null {
      const length = binding.outCell();
      const handle = binding.outCell();
      const base = handles ? mapHandle(length.arg, handle.arg) : s.map_ring_region(length.arg);
      if (isNullPointer(base) || length.value() === 0) return null;
      return { buffer: binding.view(base, length.value()), base, handle: handles ? handle.value() : null };
    },
    releaseRingRegion: (mapping) =>
      (mapping.handle !== null && releaseHandle !== null ? releaseHandle(BigInt(mapping.handle)) : s.release_ring_region(mapping.base)) as number,
    unload: () => binding.close(),
  };
}
