/**
 * Finding libtasker_worker. Order: the constructor argument, then `TASKER_LIBRARY_PATH` (either one, when
 * given, is the only candidate: naming a library means that library), then the copy bundled in the
 * package (`native/<platform>-<arch>/`), then, for the repository's own development only (the package is not
 * installed under `node_modules`), the repository's `target/release` and `target/debug`, then the system
 * loader (a bare file name). Never a `target/` relative to the caller's working directory: an installed
 * package must not pick up whatever library a user's project happens to build. A failure lists every path
 * tried.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { FfiLibraryError } from '../errors.ts';

export function libraryFileName(platform: string = process.platform): string {
  if (platform === 'darwin') return 'libtasker_worker.dylib';
  if (platform === 'win32') return 'tasker_worker.dll';
  return 'libtasker_worker.so';
}

/** The folder holding this package's package.json (works from `src/` and from the bundled `dist/`). */
function packageRoot(): string | null {
  let dir: string;
  try {
    dir = dirname(fileURLToPath(import.meta.url));
  } catch {
    return null;
  }
  for (let i = 0; i < 6; i++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === '@tasker-systems/worker') return dir;
      } catch {
        // not ours: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
}

/**
 * Candidate files, in order, and the bare name for the system loader. `root` is the package's folder
 * (found from this module; a parameter for tests).
 */
export function libraryCandidates(explicit?: string, root: string | null = packageRoot()): { files: string[]; systemName: string | null } {
  if (explicit) return { files: [resolve(explicit)], systemName: null };
  const fromEnv = process.env.TASKER_LIBRARY_PATH;
  if (fromEnv) return { files: [resolve(fromEnv)], systemName: null };
  const name = libraryFileName();
  const files: string[] = [];
  if (root) {
    files.push(join(root, 'native', `${process.platform}-${process.arch}`, name));
    // The repository's build, beside the package's own folder: a development checkout only.
    if (!resolve(root).split(sep).includes('node_modules')) {
      files.push(join(root, '..', 'target', 'release', name), join(root, '..', 'target', 'debug', name));
    }
  }
  return { files: [...new Set(files.map((f) => resolve(f)))], systemName: name };
}

/**
 * Loads the first candidate that exists with `open`; when none exists, asks the system loader. A file that
 * exists but fails to load is an error of its own (wrong architecture, missing symbols), not skipped.
 */
export function openLibrary<T>(explicit: string | undefined, open: (path: string) => T): T {
  const { files, systemName } = libraryCandidates(explicit);
  const tried: string[] = [];
  for (const file of files) {
    tried.push(file);
    if (!existsSync(file)) continue;
    try {
      return open(file);
    } catch (error) {
      if (error instanceof FfiLibraryError) throw error;
      throw new FfiLibraryError(`failed to load ${file}: ${(error as Error).message}`, error, 'LIBRARY_LOAD_FAILED', tried);
    }
  }
  if (systemName) {
    tried.push(`${systemName} (system loader: LD_LIBRARY_PATH, ld.so.cache)`);
    try {
      return open(systemName);
    } catch (error) {
      if (error instanceof FfiLibraryError) throw error;
      // fall through: report every path
    }
  }
  throw new FfiLibraryError(
    `libtasker_worker not found. Build it with 'cargo build --release -p tasker-worker-ffi' or set TASKER_LIBRARY_PATH. Tried:\n  ${tried.join('\n  ')}`,
    undefined,
    'LIBRARY_NOT_FOUND',
    tried,
  );
}
