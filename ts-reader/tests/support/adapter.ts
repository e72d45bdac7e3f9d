/** Shared set-up for tests against the real libtasker_worker. */
import { createFfiAdapter } from '../../src/ffi/factory.ts';
import type { NativeFfiAdapter } from '../../src/ffi/native-adapter.ts';
import type { StepExecutionResult } from '../../src/protocol.ts';

export function openAdapter(): NativeFfiAdapter {
  return createFfiAdapter();
}

export function successResult(stepUuid: string, extra: Record<string, unknown> = {}): string {
  const result: StepExecutionResult = { step_uuid: stepUuid, success: true, result: { ok: true, ...extra }, status: 'completed', metadata: {} };
  return JSON.stringify(result);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check` is true, polling every 5 ms, failing after `timeoutMs` with `what`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Stops a worker a failed test left running, so the next file starts clean (Bun and Deno share one process). */
export function stopStrayWorker(): void {
  try {
    const a = openAdapter();
    if (a.isWorkerRunning()) a.stopWorker();
    a.close();
  } catch {
    // nothing to clean
  }
}
