/** libtasker_worker through `Deno.dlopen` (Deno; needs --allow-ffi). Touches the `Deno` global only when called. */
import { cString } from './c-string.ts';
import { FfiLibraryError } from './errors.ts';
import type { JsonReturningSymbol, NativeLibrary, RegionMapping } from './native.ts';

/** The slice of Deno's FFI API used here (declared locally so the package needs no Deno type package). */
type DenoPointer = object | null;
interface DenoDynamicLibrary {
  symbols: Record<string, ((...args: unknown[]) => unknown) | null>;
  close(): void;
}
interface DenoFfiApi {
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string; optional?: boolean }>): DenoDynamicLibrary;
  UnsafePointerView: {
    getCString(pointer: NonNullable<DenoPointer>): string;
    getArrayBuffer(pointer: NonNullable<DenoPointer>, byteLength: number): ArrayBuffer;
  };
}

export function openDenoLibrary(path: string): NativeLibrary {
  const deno = (globalThis as { Deno?: DenoFfiApi }).Deno;
  if (!deno) throw new FfiLibraryError('the Deno FFI adapter runs on Deno only', undefined, 'UNSUPPORTED_RUNTIME');
  let lib: DenoDynamicLibrary;
  try {
    lib = deno.dlopen(path, {
      bootstrap_worker: { parameters: ['buffer'], result: 'pointer' },
      get_worker_status: { parameters: [], result: 'pointer' },
      stop_worker: { parameters: [], result: 'pointer' },
      transition_to_graceful_shutdown: { parameters: [], result: 'pointer' },
      is_worker_running: { parameters: [], result: 'bool' },
      get_ffi_dispatch_metrics: { parameters: [], result: 'pointer' },
      check_starvation_warnings: { parameters: [], result: 'void' },
      cleanup_timeouts: { parameters: [], result: 'void' },
      free_rust_string: { parameters: ['pointer'], result: 'void' },
      poll_step_events: { parameters: [], result: 'pointer' },
      complete_step_event: { parameters: ['buffer', 'buffer'], result: 'i32' },
      map_ring_region: { parameters: ['buffer'], result: 'pointer' },
      release_ring_region: { parameters: ['pointer'], result: 'i32' },
      map_ring_region_handle: { parameters: ['buffer', 'buffer'], result: 'pointer', optional: true },
      release_ring_region_handle: { parameters: ['u64'], result: 'i32', optional: true },
      poll_worker_logs: { parameters: [], result: 'pointer', optional: true },
      poll_completion_refusals: { parameters: [], result: 'pointer', optional: true },
      tasker_worker_abi_version: { parameters: [], result: 'u32', optional: true },
      give_back_step_event: { parameters: ['buffer'], result: 'i32', optional: true },
      checkpoint_yield_step_event: { parameters: ['buffer', 'buffer'], result: 'i32', optional: true },
      client_call: { parameters: ['buffer'], result: 'pointer', optional: true },
      log_message: { parameters: ['i32', 'buffer', 'buffer'], result: 'i32', optional: true },
    });
  } catch (error) {
    const message = (error as Error).message;
    const code = /symbol/i.test(message) ? 'ABI_MISMATCH' : 'LIBRARY_LOAD_FAILED';
    throw new FfiLibraryError(`failed to load ${path}: ${message}`, error, code);
  }
  type Sym = (...args: unknown[]) => unknown;
  const s = lib.symbols as unknown as Record<
    | 'free_rust_string'
    | 'bootstrap_worker'
    | 'complete_step_event'
    | 'is_worker_running'
    | 'check_starvation_warnings'
    | 'cleanup_timeouts'
    | 'map_ring_region'
    | 'release_ring_region',
    Sym
  > &
    Record<JsonReturningSymbol, Sym | null>;
  const take = (ptr: unknown): string | null => {
    if (ptr === null) return null;
    try {
      return deno.UnsafePointerView.getCString(ptr as object);
    } finally {
      s.free_rust_string(ptr);
    }
  };
  const lenOut = new BigUint64Array(1);
  const handleOut = new BigUint64Array(1);
  // The handle pair (libraries before it: map_ring_region / release_ring_region, released by address).
  const mapHandle = lib.symbols.map_ring_region_handle ?? null;
  const releaseHandle = lib.symbols.release_ring_region_handle ?? null;
  const handles = mapHandle !== null && releaseHandle !== null;
  const abi = lib.symbols.tasker_worker_abi_version ?? null;
  const logs = lib.symbols.poll_worker_logs ?? null;
  const refusals = lib.symbols.poll_completion_refusals ?? null;
  const giveBack = lib.symbols.give_back_step_event ?? null;
  const checkpoint = lib.symbols.checkpoint_yield_step_event ?? null;
  const clientCall = lib.symbols.client_call ?? null;
  const logMessage = lib.symbols.log_message ?? null;
  return {
    path,
    hasLogs: logs !== null,
    hasRefusals: refusals !== null,
    callJson(symbol: JsonReturningSymbol) {
      const fn = s[symbol] as (() => unknown) | null | undefined;
      return fn ? take(fn()) : null;
    },
    bootstrapWorker: (configJson) => take(s.bootstrap_worker(cString(configJson))),
    completeStepEvent: (eventId, resultJson) => s.complete_step_event(cString(eventId), cString(resultJson)) as number,
    giveBackStepEvent: giveBack ? (eventId) => giveBack(cString(eventId)) as number : null,
    checkpointYieldStepEvent: checkpoint ? (eventId, checkpointJson) => checkpoint(cString(eventId), cString(checkpointJson)) as number : null,
    clientCall: clientCall ? (requestJson) => take(clientCall(cString(requestJson))) : null,
    logMessage: logMessage
      ? (level, message, fieldsJson) => logMessage(level, cString(message), fieldsJson === null ? null : cString(fieldsJson)) as number
      : null,
    isWorkerRunning: () => Boolean(s.is_worker_running()),
    checkStarvationWarnings: () => void s.check_starvation_warnings(),
    cleanupTimeouts: () => void s.cleanup_timeouts(),
    abiVersion: () => (abi ? (abi() as number) >>> 0 : null),
    hasMappingHandles: handles,
    mapRingRegion(): RegionMapping | null {
      lenOut[0] = 0n;
      handleOut[0] = 0n;
      const base = (handles ? (mapHandle as Sym)(lenOut, handleOut) : s.map_ring_region(lenOut)) as DenoPointer;
      const length = Number(lenOut[0]);
      if (base === null || length === 0) return null;
      return { buffer: deno.UnsafePointerView.getArrayBuffer(base, length), base, handle: handles ? Number(handleOut[0]) : null };
    },
    // Deno takes a u64 argument as a bigint.
    releaseRingRegion: (mapping) =>
      (mapping.handle !== null && releaseHandle !== null ? releaseHandle(BigInt(mapping.handle)) : s.release_ring_region(mapping.base)) as number,
    unload: () => lib.close(),
  };
}
