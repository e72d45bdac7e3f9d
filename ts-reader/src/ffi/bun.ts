/** Bun FFI adapter over bun:ffi. */
import { openLibrary } from './library-path.ts';
import { NativeFfiAdapter } from './native-adapter.ts';
import { openBunLibrary } from './native-bun.ts';

export class BunFfiAdapter extends NativeFfiAdapter {
  constructor(libraryPath?: string) {
    super('bun', openLibrary(libraryPath, openBunLibrary));
  }
}
