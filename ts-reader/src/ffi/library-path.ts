/**
 * Finding libtasker_worker. Order: the constructor argument, then `TASKER_LIBRARY_PATH` (either one, when
 * given, is the only candidate: naming a library means that library), then the library of this machine's
 * platform package (`@tasker-systems/worker-<platform>`, an optional dependency npm installs only where its
 * `os`, `cpu` and `libc` match), then, for the repository's own development only (the package is not
 * installed under `node_modules`), the repository's `target/release` and `target/debug`, then the system
 * loader (a bare file name). Never a `target/` relative to the caller's working directory: an installed
 * package must not pick up whatever library a user's project happens to build. A failure lists every path
 * tried; on a machine no package is published for it is an `UnsupportedPlatformError`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { FfiLibraryError, UnsupportedPlatformError } from '../errors.ts';
import { detectLibc } from './libc.ts';
import { type HostPlatform, hostId, PLATFORM_TARGETS, type PlatformTarget, platformPackageName, targetFor } from './platforms.ts';

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

let host: HostPlatform | null = null;

/** This machine: `process.platform`, `process.arch` and, on Linux, its C library (detected once). */
export function currentHost(): HostPlatform {
  host ??= { platform: process.platform, arch: process.arch, libc: detectLibc() };
  return host;
}

/** The folder of an installed package (resolved as this package's own imports are), or null when it is not installed. */
function installedPackageDir(name: string): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch {
    return null;
  }
}

/** Where the library is looked for (see the module's comment). */
export interface LibrarySearch {
  /** Candidate files, in order. */
  files: string[];
  /** The bare name for the system loader, or null when a library was named. */
  systemName: string | null;
  /** The platform package's target for this machine, or null when none is published for it. */
  target: PlatformTarget | null;
  /** This machine in the targets' terms (`linux-x64-gnu`). */
  host: string;
}

/**
 * Candidate files, in order, and the bare name for the system loader. `root` is the package's folder,
 * `machine` the host and `packageDir` how an installed package is found (parameters for tests).
 */
export function libraryCandidates(
  explicit?: string,
  root: string | null = packageRoot(),
  machine: HostPlatform = currentHost(),
  packageDir: (name: string) => string | null = installedPackageDir,
): LibrarySearch {
  const target = targetFor(machine);
  const search = { target, host: hostId(machine) };
  if (explicit) return { files: [resolve(explicit)], systemName: null, ...search };
  const fromEnv = process.env.TASKER_LIBRARY_PATH;
  if (fromEnv) return { files: [resolve(fromEnv)], systemName: null, ...search };
  const name = libraryFileName(machine.platform);
  const files: string[] = [];
  if (target !== null) {
    const dir = packageDir(platformPackageName(target));
    if (dir !== null) files.push(join(dir, target.library));
  }
  // The repository's build, beside the package's own folder: a development checkout only.
  if (root && !resolve(root).split(sep).includes('node_modules')) {
    files.push(join(root, '..', 'target', 'release', name), join(root, '..', 'target', 'debug', name));
  }
  return { files: [...new Set(files.map((f) => resolve(f)))], systemName: name, ...search };
}

/**
 * Loads the first candidate that exists with `open`; when none exists, asks the system loader. A file that
 * exists but fails to load is an error of its own (wrong architecture, missing symbols), not skipped.
 */
export function openLibrary<T>(explicit: string | undefined, open: (path: string) => T, search: LibrarySearch = libraryCandidates(explicit)): T {
  const { files, systemName, target, host } = search;
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
      if (error instanceof FfiLibraryError && error.code !== 'LIBRARY_LOAD_FAILED') throw error;
      // fall through: report every path
    }
    if (target === null)
      throw new UnsupportedPlatformError(
        host,
        PLATFORM_TARGETS.map((t) => t.id),
        tried,
      );
  }
  const hint =
    target !== null && systemName
      ? `install its platform package, ${platformPackageName(target)} (an optional dependency: was it omitted with --omit=optional or --no-optional?), `
      : '';
  throw new FfiLibraryError(
    `libtasker_worker not found: ${hint}build it with 'cargo build --release -p tasker-worker-ffi' or set TASKER_LIBRARY_PATH. Tried:\n  ${tried.join('\n  ')}`,
    undefined,
    'LIBRARY_NOT_FOUND',
    tried,
  );
}
