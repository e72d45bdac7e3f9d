/**
 * Region files (and doorbell sockets) of a worker that is still attached when the process exits are
 * unlinked on the way out, so a program that never called `stop()` leaves nothing in `/dev/shm`.
 *
 * Only the names go: the mapping is never unmapped here (handlers may still run during `exit` listeners,
 * and a view read after an unmap is a SIGSEGV), and the worker core's threads end with the process.
 *
 * - Node and Bun: `process.on('exit')`, which runs on a normal end, on `process.exit()` and after an
 *   uncaught exception or unhandled rejection.
 * - Deno: the global `unload` event (normal end, `Deno.exit()`) and, because Deno runs no exit hook after an
 *   uncaught exception, the global `error` and `unhandledrejection` events (observed, never prevented: the
 *   process still dies of the error). Unlinking needs `--allow-write`; without it the files stay.
 *
 * After a kill -9 (or any signal whose default action ends the process) nothing runs: the files stay until
 * the next worker starts in the same directory (it removes regions whose creator is dead) or
 * `tasker-ring clean` runs.
 */
import { unlinkSync } from 'node:fs';
import process from 'node:process';
import { detectRuntime } from '../runtime.ts';

const paths = new Set<string>();
let installed = false;

function removeAll(): void {
  for (const path of paths) {
    try {
      unlinkSync(path);
    } catch {
      // Already gone (stopped meanwhile), or not permitted (Deno without --allow-write): nothing to do.
    }
  }
  paths.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  if (detectRuntime() === 'deno') {
    const target = globalThis as unknown as { addEventListener(type: string, listener: (event: Event) => void): void };
    // An error event an earlier listener prevented does not end the process: the files stay.
    const onFatal = (event: Event) => {
      if (!event.defaultPrevented) removeAll();
    };
    target.addEventListener('unload', removeAll);
    target.addEventListener('error', onFatal);
    target.addEventListener('unhandledrejection', onFatal);
  } else {
    process.on('exit', removeAll);
  }
}

/** Unlinks `files` when the process exits, unless the returned function is called first. */
export function removeAtExit(files: readonly string[]): () => void {
  const own = files.filter((f) => f.length > 0);
  if (own.length === 0) return () => {};
  install();
  for (const f of own) paths.add(f);
  return () => {
    for (const f of own) paths.delete(f);
  };
}

/** The files registered now (tests). */
export function pendingExitRemovals(): string[] {
  return [...paths];
}
