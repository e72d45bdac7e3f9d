/** libtasker_worker through bun:ffi (Bun). `bun:ffi` is required lazily by this module's function only. */
import type * as BunFfi from 'bun:ffi';
import { cString } from './c-string.ts';
import { FfiLibraryError } from './errors.ts';
import { loadModule } from './load-module.ts';
import type { JsonReturningSymbol, NativeLibrary, RegionMapping } from './native.ts';

/** What bun:ffi hands back for a `ptr` result. */
type RawPointer = BunFfi.Pointer | bigint | null;

export function openBunLibrary(path: string): NativeLibrary {
  const ffi = loadModule<typeof BunFfi>('bun:ffi', 'the Bun FFI adapter runs on Bun only');
  const { FFIType, CString, toArrayBuffer, dlopen } = ffi;
  const p = FFIType.ptr;
  const required = {
    bootstrap_worker: { args: [p], returns: p },
    get_worker_status: { args: [], returns: p },
    stop_worker: { args: [], returns: p },
    transition_to_graceful_shutdown: { args: [], returns: p },
    is_worker_running: { args: [], returns: FFIType.bool },
    get_ffi_dispatch_metrics: { args: [], returns: p },
    check_starvation_warnings: { args: [], returns: FFIType.void },
    cleanup_timeouts: { args: [], returns: FFIType.void },
    free_rust_string: { args: [p], returns: FFIType.void },
    poll_step_events: { args: [], returns: p },
    complete_step_event: { args: [p, p], returns: FFIType.i32 },
    map_ring_region: { args: [p], returns: p },
    release_ring_region: { args: [p], returns: FFIType.i32 },
  } as const;
  let lib: BunFfi.Library<typeof required>;
  try {
    lib = dlopen(path, required);
  } catch (error) {
    const message = (error as Error).message;
    const code = /symbol/i.test(message) ? 'ABI_MISMATCH' : 'LIBRARY_LOAD_FAILED';
    throw new FfiLibraryError(`failed to load ${path}: ${message}`, error, code);
  }
  // Optional symbols: bun:ffi refuses a whole dlopen when one symbol is missing, so probe them separately.
  const optional = <T extends Record<string, BunFfi.FFIFunction>>(defs: T): BunFfi.Library<T> | null => {
    try {
      return dlopen(path, defs);
    } catch {
      return null;
    }
  };
  const abiLib = optional({ tasker_worker_abi_version: { args: [], returns: FFIType.u32 } });
  const logsLib = optional({ poll_worker_logs: { args: [], returns: p } });
  const refusalsLib = optional({ poll_completion_refusals: { args: [], returns: p } });
  const giveBackLib = optional({ give_back_step_event: { args: [p], returns: FFIType.i32 } });
  const checkpointLib = optional({ checkpoint_yield_step_event: { args: [p, p], returns: FFIType.i32 } });
  const clientLib = optional({ client_call: { args: [p], returns: p } });
  const logLib = optional({ log_message: { args: [FFIType.i32, p, p], returns: FFIType.i32 } });
  // The handle pair (libraries before it: map_ring_region / release_ring_region, released by address).
  const handleLib = optional({
    map_ring_region_handle: { args: [p, p], returns: p },
    release_ring_region_handle: { args: [FFIType.u64], returns: FFIType.i32 },
  });
  const s = lib.symbols;
  const take = (ptr: RawPointer): string | null => {
    if (ptr === null || ptr === 0 || ptr === 0n) return null;
    try {
      return new CString(ptr as BunFfi.Pointer).toString();
    } finally {
      s.free_rust_string(ptr);
    }
  };
  const json: Record<JsonReturningSymbol, (() => RawPointer) | null> = {
    get_worker_status: s.get_worker_status,
    stop_worker: s.stop_worker,
    transition_to_graceful_shutdown: s.transition_to_graceful_shutdown,
    get_ffi_dispatch_metrics: s.get_ffi_dispatch_metrics,
    poll_step_events: s.poll_step_events,
    poll_worker_logs: logsLib ? logsLib.symbols.poll_worker_logs : null,
    poll_completion_refusals: refusalsLib ? refusalsLib.symbols.poll_completion_refusals : null,
  };
  const lenOut = new BigUint64Array(1);
  const handleOut = new BigUint64Array(1);
  return {
    path,
    hasLogs: logsLib !== null,
    hasRefusals: refusalsLib !== null,
    callJson(symbol) {
      const fn = json[symbol];
      return fn ? take(fn()) : null;
    },
    bootstrapWorker: (configJson) => take(s.bootstrap_worker(cString(configJson))),
    completeStepEvent: (eventId, resultJson) => s.complete_step_event(cString(eventId), cString(resultJson)),
    giveBackStepEvent: giveBackLib ? (eventId) => giveBackLib.symbols.give_back_step_event(cString(eventId)) : null,
    checkpointYieldStepEvent: checkpointLib
      ? (eventId, checkpointJson) => checkpointLib.symbols.checkpoint_yield_step_event(cString(eventId), cString(checkpointJson))
      : null,
    clientCall: clientLib ? (requestJson) => take(clientLib.symbols.client_call(cString(requestJson))) : null,
    logMessage: logLib
      ? (level, message, fieldsJson) => logLib.symbols.log_message(level, cString(message), fieldsJson === null ? null : cString(fieldsJson))
      : null,
    isWorkerRunning: () => Boolean(s.is_worker_running()),
    checkStarvationWarnings: () => s.check_starvation_warnings(),
    cleanupTimeouts: () => s.cleanup_timeouts(),
    abiVersion: () => (abiLib ? abiLib.symbols.tasker_worker_abi_version() >>> 0 : null),
    hasMappingHandles: handleLib !== null,
    mapRingRegion(): RegionMapping | null {
      lenOut[0] = 0n;
      handleOut[0] = 0n;
      const base = handleLib ? handleLib.symbols.map_ring_region_handle(lenOut, handleOut) : s.map_ring_region(lenOut);
      const length = Number(lenOut[0]);
      if (base === null || base === 0 || length === 0) return null;
      return { buffer: toArrayBuffer(base as BunFfi.Pointer, 0, length), base, handle: handleLib ? Number(handleOut[0]) : null };
    },
    releaseRingRegion: (mapping) =>
      mapping.handle !== null && handleLib
        ? handleLib.symbols.release_ring_region_handle(BigInt(mapping.handle))
        : s.release_ring_region(mapping.base as BunFfi.Pointer),
    unload() {
      abiLib?.close();
      logsLib?.close();
      refusalsLib?.close();
      giveBackLib?.close();
      checkpointLib?.close();
      clientLib?.close();
      logLib?.close();
      handleLib?.close();
      lib.close();
    },
  };
}
