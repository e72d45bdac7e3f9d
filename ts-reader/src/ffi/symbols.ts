/**
 * The C interface of libtasker_worker (`crates/tasker-worker-ffi/include/tasker_worker.h`), declared once:
 * every runtime's binding (koffi, bun:ffi, Deno.dlopen) maps these names and types to its own FFI, and
 * nothing else names a C symbol's signature. 64-bit targets only (`size_t` is a `uint64_t`).
 */
import { FfiLibraryError } from '../errors.ts';

/** A C argument or return type, as the bindings map it. */
export type CType =
  | 'void'
  | 'bool'
  | 'i32'
  | 'u32'
  | 'u64'
  /** `const char *` argument: NUL-terminated UTF-8, borrowed by the library for the call only. */
  | 'cstr'
  /** `char *` result owned by the caller: read, then freed with `free_rust_string`; NULL for none. */
  | 'owned'
  /** An opaque `void *`, argument or result. */
  | 'ptr'
  /** `size_t *` / `uint64_t *` out-argument: the library writes one 64-bit value. */
  | 'out_u64';

export interface CSymbol {
  readonly args: readonly CType[];
  readonly returns: CType;
  /** Absent from older libraries; the binding gives null for it instead of refusing the library. */
  readonly optional?: true;
}

export const C_SYMBOLS = {
  tasker_worker_abi_version: { args: [], returns: 'u32', optional: true },
  bootstrap_worker: { args: ['cstr'], returns: 'owned' },
  get_worker_status: { args: [], returns: 'owned' },
  stop_worker: { args: [], returns: 'owned' },
  transition_to_graceful_shutdown: { args: [], returns: 'owned' },
  is_worker_running: { args: [], returns: 'bool' },
  get_ffi_dispatch_metrics: { args: [], returns: 'owned' },
  check_starvation_warnings: { args: [], returns: 'void' },
  cleanup_timeouts: { args: [], returns: 'void' },
  free_rust_string: { args: ['ptr'], returns: 'void' },
  poll_step_events: { args: [], returns: 'owned' },
  complete_step_event: { args: ['cstr', 'cstr'], returns: 'i32' },
  give_back_step_event: { args: ['cstr'], returns: 'i32', optional: true },
  checkpoint_yield_step_event: { args: ['cstr', 'cstr'], returns: 'i32', optional: true },
  poll_worker_logs: { args: [], returns: 'owned', optional: true },
  poll_completion_refusals: { args: [], returns: 'owned', optional: true },
  poll_domain_events: { args: [], returns: 'owned', optional: true },
  map_ring_region: { args: ['out_u64'], returns: 'ptr' },
  release_ring_region: { args: ['ptr'], returns: 'i32' },
  map_ring_region_handle: { args: ['out_u64', 'out_u64'], returns: 'ptr', optional: true },
  release_ring_region_handle: { args: ['u64'], returns: 'i32', optional: true },
  client_call: { args: ['cstr'], returns: 'owned', optional: true },
  /** `fields_json` may be NULL: the bindings pass `null` for a `cstr` as a NULL pointer. */
  log_message: { args: ['i32', 'cstr', 'cstr'], returns: 'i32', optional: true },
} as const satisfies Record<string, CSymbol>;

export type SymbolName = keyof typeof C_SYMBOLS;

/** A bound C function: arguments as the binding's `cstr`/`outCell` give them, `u64` as a bigint. */
export type CFunction = (...args: any[]) => any;

/** The bound functions: an optional symbol the library lacks is null. */
export type BoundSymbols = {
  readonly [K in SymbolName]: (typeof C_SYMBOLS)[K] extends { optional: true } ? CFunction | null : CFunction;
};

/** One runtime's FFI over a loaded library: the only runtime-specific code (see `native.ts`). */
export interface Binding {
  readonly symbols: BoundSymbols;
  /** The argument for a `cstr` parameter. */
  cstr(s: string): unknown;
  /** A fresh cell for an `out_u64` argument (`arg`), read after the call (`value()`). */
  outCell(): { readonly arg: unknown; value(): number };
  /** Copies the NUL-terminated string at a non-NULL pointer. */
  readCString(pointer: unknown): string;
  /** An ArrayBuffer over `length` bytes at a non-NULL pointer (no copy). */
  view(pointer: unknown, length: number): ArrayBuffer;
  /** Unloads the library. */
  close(): void;
}

/** Whether a pointer result is NULL (koffi and Deno give null, bun:ffi null or 0). */
export function isNullPointer(pointer: unknown): boolean {
  return pointer === null || pointer === undefined || pointer === 0 || pointer === 0n;
}

/** Binds every symbol with `bindOne`, which returns null when the library lacks it. A missing required one is an ABI mismatch. */
export function bindSymbols(path: string, bindOne: (name: SymbolName, symbol: CSymbol) => CFunction | null, onMissing: () => void): BoundSymbols {
  const bound: Record<string, CFunction | null> = {};
  for (const [name, symbol] of Object.entries(C_SYMBOLS) as [SymbolName, CSymbol][]) {
    const fn = bindOne(name, symbol);
    if (fn === null && !symbol.optional) {
      onMissing();
      throw new FfiLibraryError(`${path} does not export '${name}': it is not a libtasker_worker this package can use`, undefined, 'ABI_MISMATCH');
    }
    bound[name] = fn;
  }
  return bound as BoundSymbols;
}

/** A load failure as a typed error: a missing symbol is an ABI mismatch, anything else a load failure. */
export function loadError(path: string, error: unknown): FfiLibraryError {
  if (error instanceof FfiLibraryError) return error;
  const message = (error as Error).message;
  return new FfiLibraryError(`failed to load ${path}: ${message}`, error, /symbol/i.test(message) ? 'ABI_MISMATCH' : 'LIBRARY_LOAD_FAILED');
}

/** An `out_u64` cell for the FFIs that take a typed array as a pointer argument (bun:ffi, Deno). */
export function typedArrayCell(): { readonly arg: BigUint64Array; value(): number } {
  const cell = new BigUint64Array(1);
  return { arg: cell, value: () => Number(cell[0]) };
}
