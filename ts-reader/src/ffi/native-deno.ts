/** libtasker_worker through `Deno.dlopen` (Deno; needs --allow-ffi). Touches the `Deno` global only when called. */
import { FfiLibraryError } from '../errors.ts';
import { cString } from './c-string.ts';
import { type NativeLibrary, nativeLibrary } from './native.ts';
import { type Binding, bindSymbols, C_SYMBOLS, type CType, loadError, typedArrayCell } from './symbols.ts';

/** The slice of Deno's FFI API used here (declared locally so the package needs no Deno type package). */
interface DenoFfiApi {
  dlopen(
    path: string,
    symbols: Record<string, { parameters: string[]; result: string; optional?: boolean }>,
  ): { symbols: Record<string, ((...args: unknown[]) => unknown) | null | undefined>; close(): void };
  UnsafePointerView: {
    getCString(pointer: object): string;
    getArrayBuffer(pointer: object, byteLength: number): ArrayBuffer;
  };
}

/** Deno's FFI types; a u64 argument is passed as a bigint. */
const DENO_TYPE: Record<CType, string> = {
  void: 'void',
  bool: 'bool',
  i32: 'i32',
  u32: 'u32',
  u64: 'u64',
  cstr: 'buffer',
  owned: 'pointer',
  ptr: 'pointer',
  out_u64: 'buffer',
};

export function openDenoLibrary(path: string): NativeLibrary {
  const deno = (globalThis as { Deno?: DenoFfiApi }).Deno;
  if (!deno) throw new FfiLibraryError('the Deno FFI adapter runs on Deno only', undefined, 'UNSUPPORTED_RUNTIME');
  let lib: ReturnType<DenoFfiApi['dlopen']>;
  try {
    lib = deno.dlopen(
      path,
      Object.fromEntries(
        Object.entries(C_SYMBOLS).map(([name, s]) => [
          name,
          { parameters: s.args.map((a: CType) => DENO_TYPE[a]), result: DENO_TYPE[s.returns], optional: 'optional' in s },
        ]),
      ),
    );
  } catch (error) {
    throw loadError(path, error);
  }
  const binding: Binding = {
    symbols: bindSymbols(
      path,
      (name) => lib.symbols[name] ?? null,
      () => lib.close(),
    ),
    cstr: cString,
    outCell: typedArrayCell,
    readCString: (pointer) => deno.UnsafePointerView.getCString(pointer as object),
    view: (pointer, length) => deno.UnsafePointerView.getArrayBuffer(pointer as object, length),
    close: () => lib.close(),
  };
  return nativeLibrary(path, binding);
}
