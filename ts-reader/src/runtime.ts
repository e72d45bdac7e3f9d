/** Runtime detection (the seed's functions; Deno is supported now). */

export type RuntimeType = 'bun' | 'node' | 'deno' | 'unknown';

const g = globalThis as { Bun?: unknown; Deno?: { version?: { deno?: string } }; process?: { versions?: { node?: string } } };

export function detectRuntime(): RuntimeType {
  if (typeof g.Bun !== 'undefined') return 'bun';
  if (typeof g.Deno !== 'undefined') return 'deno';
  if (g.process?.versions?.node) return 'node';
  return 'unknown';
}

export function isRuntimeSupported(runtime: RuntimeType): boolean {
  return runtime === 'bun' || runtime === 'node' || runtime === 'deno';
}

/** Throws unless `runtime` (default: the detected one) is Node.js, Bun or Deno. */
export function assertSupportedRuntime(runtime: RuntimeType = detectRuntime()): RuntimeType {
  if (!isRuntimeSupported(runtime)) {
    throw new Error(`Unsupported runtime: ${runtime}. @tasker-systems/worker requires Node.js, Bun or Deno.`);
  }
  return runtime;
}
