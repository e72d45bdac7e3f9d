/** Deno FFI adapter over Deno.dlopen (run with --allow-ffi --allow-read --allow-env). */
import { openLibrary } from './library-path.ts';
import { NativeFfiAdapter } from './native-adapter.ts';
import { openDenoLibrary } from './native-deno.ts';

export class DenoFfiAdapter extends NativeFfiAdapter {
  constructor(libraryPath?: string) {
    super('deno', openLibrary(libraryPath, openDenoLibrary));
  }
}
