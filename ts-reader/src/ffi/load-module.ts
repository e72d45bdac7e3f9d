/**
 * Loads a runtime-specific module (koffi, bun:ffi) synchronously and only when an adapter needs it, so
 * the package root imports cleanly on every runtime.
 */
import { createRequire } from 'node:module';
import { FfiLibraryError } from '../errors.ts';

let requireFn: NodeJS.Require | null = null;

export function loadModule<T>(name: string, why: string): T {
  try {
    requireFn ??= createRequire(import.meta.url);
    return requireFn(name) as T;
  } catch (error) {
    throw new FfiLibraryError(`cannot load '${name}' (${why}): ${(error as Error).message}`, error, 'FFI_MODULE_MISSING');
  }
}
