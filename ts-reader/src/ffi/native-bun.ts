/** libtasker_worker through bun:ffi (Bun). `bun:ffi` is required lazily by this module's function only. */
import type * as BunFfi from 'bun:ffi';
import { cString } from './c-string.ts';
import { loadModule } from './load-module.ts';
import { type NativeLibrary, nativeLibrary } from './native.ts';
import { type Binding, bindSymbols, C_SYMBOLS, type CFunction, type CSymbol, type CType, loadError, typedArrayCell } from './symbols.ts';

type Library = BunFfi.Library<Record<string, BunFfi.FFIFunction>>;

export function openBunLibrary(path: string): NativeLibrary {
  const { FFIType, CString, toArrayBuffer, dlopen } = loadModule<typeof BunFfi>('bun:ffi', 'the Bun FFI adapter runs on Bun only');
  const type: Record<CType, BunFfi.FFIType> = {
    void: FFIType.void,
    bool: FFIType.bool,
    i32: FFIType.i32,
    u32: FFIType.u32,
    u64: FFIType.u64,
    cstr: FFIType.ptr,
    owned: FFIType.ptr,
    ptr: FFIType.ptr,
    out_u64: FFIType.ptr,
  };
  const declare = (symbols: [string, CSymbol][]) =>
    Object.fromEntries(symbols.map(([name, s]) => [name, { args: s.args.map((a) => type[a]), returns: type[s.returns] }]));
  const all = Object.entries(C_SYMBOLS) as [string, CSymbol][];
  // bun:ffi refuses a whole dlopen when one symbol is missing: the required ones together, each optional one alone.
  const libs: Library[] = [];
  try {
    libs.push(dlopen(path, declare(all.filter(([, s]) => !s.optional))));
  } catch (error) {
    throw loadError(path, error);
  }
  const closeAll = () => {
    for (const lib of libs) lib.close();
  };
  const symbols = bindSymbols(
    path,
    (name, symbol) => {
      if (!symbol.optional) return (libs[0] as Library).symbols[name] as unknown as CFunction;
      try {
        const lib = dlopen(path, declare([[name, symbol]]));
        libs.push(lib);
        return lib.symbols[name] as unknown as CFunction;
      } catch {
        return null;
      }
    },
    closeAll,
  );
  const binding: Binding = {
    symbols,
    cstr: cString,
    outCell: typedArrayCell,
    readCString: (pointer) => new CString(pointer as BunFfi.Pointer).toString(),
    view: (pointer, length) => toArrayBuffer(pointer as BunFfi.Pointer, 0, length),
    close: closeAll,
  };
  return nativeLibrary(path, binding);
}
