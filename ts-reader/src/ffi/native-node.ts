/** libtasker_worker through koffi 3.x (Node). Loaded lazily: koffi is imported only by this module's function. */
import type * as Koffi from 'koffi';
import { loadModule } from './load-module.ts';
import { type NativeLibrary, nativeLibrary } from './native.ts';
import { type Binding, bindSymbols, type CType, loadError } from './symbols.ts';

/** koffi's C declarations of the interface's types. */
const KOFFI_TYPE: Record<CType, string> = {
  void: 'void',
  bool: 'bool',
  i32: 'int32_t',
  u32: 'uint32_t',
  u64: 'uint64_t',
  cstr: 'const char *',
  owned: 'void *',
  ptr: 'void *',
  out_u64: '_Out_ uint64_t *',
};

export function openKoffiLibrary(path: string): NativeLibrary {
  const koffi = loadModule<typeof Koffi>('koffi', 'the Node FFI adapter needs koffi 3.x: npm install koffi');
  let lib: Koffi.LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (error) {
    throw loadError(path, error);
  }
  const symbols = bindSymbols(
    path,
    (name, { args, returns }) => {
      try {
        return lib.func(
          name,
          KOFFI_TYPE[returns],
          args.map((a) => KOFFI_TYPE[a]),
        );
      } catch {
        return null;
      }
    },
    () => lib.unload(),
  );
  const binding: Binding = {
    symbols,
    cstr: (s) => s,
    outCell() {
      const cell: [number | bigint] = [0];
      return { arg: cell, value: () => Number(cell[0]) };
    },
    readCString: (pointer) => koffi.decode(pointer, 'char', -1) as string,
    view: (pointer, length) => koffi.view(pointer, length),
    close: () => lib.unload(),
  };
  return nativeLibrary(path, binding);
}
