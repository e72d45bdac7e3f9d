/** Picks the adapter for the runtime this code runs on. */

import { FfiLibraryError } from '../errors.ts';
import { detectRuntime, type RuntimeType } from '../runtime.ts';
import { BunFfiAdapter } from './bun.ts';
import { DenoFfiAdapter } from './deno.ts';
import type { NativeFfiAdapter } from './native-adapter.ts';
import { NodeFfiAdapter } from './node.ts';

export interface CreateAdapterOptions {
  /** Path of libtasker_worker (else `TASKER_LIBRARY_PATH`, this platform's package, the repo's target/, the system). */
  libraryPath?: string;
  /** Force a runtime's adapter (default: the detected runtime). */
  runtime?: RuntimeType;
}

export function createFfiAdapter(options: CreateAdapterOptions = {}): NativeFfiAdapter {
  const runtime = options.runtime ?? detectRuntime();
  switch (runtime) {
    case 'node':
      return new NodeFfiAdapter(options.libraryPath);
    case 'bun':
      return new BunFfiAdapter(options.libraryPath);
    case 'deno':
      return new DenoFfiAdapter(options.libraryPath);
    default:
      throw new FfiLibraryError(
        `no FFI adapter for runtime '${runtime}': @tasker-systems/worker runs on Node.js, Bun and Deno`,
        undefined,
        'UNSUPPORTED_RUNTIME',
      );
  }
}
