/** Node.js FFI adapter over koffi 3.x (replacing the seed's ffi-napi). */
import { openLibrary } from './library-path.ts';
import { NativeFfiAdapter } from './native-adapter.ts';
import { openKoffiLibrary } from './native-node.ts';

export class NodeFfiAdapter extends NativeFfiAdapter {
  /** Loads libtasker_worker (see `libraryCandidates` for the search order). */
  constructor(libraryPath?: string) {
    super('node', openLibrary(libraryPath, openKoffiLibrary));
  }
}
