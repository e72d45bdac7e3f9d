/** A throwaway step store for tests: a fresh SQLite file, filled with the `tasker-ring store` CLI. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The `tasker-ring` CLI (`TASKER_RING_BIN`, else the repository's release build; scripts/ts-test builds it). */
export function cliPath(): string {
  const path = process.env.TASKER_RING_BIN ?? join(repoRoot, 'target/release/tasker-ring');
  if (!existsSync(path)) throw new Error(`the tasker-ring CLI is not built at ${path}: cargo build --release -p tasker-ring-cli (scripts/ts-test does)`);
  return path;
}

/** A new empty directory under the system's temp dir; `remove()` deletes it. */
export function tempDir(tag: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `tasker-ts-${tag}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

function cli(args: string[]): string {
  const r = spawnSync(cliPath(), args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`tasker-ring ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Creates `count` tasks of `template` (linear: 4 steps in a chain) in the store at `databaseUrl`. */
export function enqueue(databaseUrl: string, count: number, template: 'linear' | 'diamond' = 'linear', namespace = 'default'): void {
  cli(['store', 'enqueue', '--database-url', databaseUrl, '--template', template, '--count', String(count), '--namespace', namespace]);
}

export interface StoreSteps {
  total: number;
  pending: number;
  ready: number;
  claimed: number;
  complete: number;
  error: number;
}

/** The store's step counts (`tasker-ring store status --json`). */
export function storeSteps(databaseUrl: string): StoreSteps {
  return (JSON.parse(cli(['store', 'status', '--json', '--database-url', databaseUrl])) as { steps: StoreSteps }).steps;
}

export interface StoreVerify {
  tasks: number;
  /** Tasks whose final step is complete (the only ones compared). */
  checked: number;
  /** Checked tasks whose final value is not the templates' reference math. */
  mismatches: number;
}

/** Compares the store's final results with the templates' reference math (`tasker-ring store verify --json`). */
export function verifyStore(databaseUrl: string): StoreVerify {
  const r = spawnSync(cliPath(), ['store', 'verify', '--json', '--database-url', databaseUrl], { encoding: 'utf8' });
  if (r.error) throw r.error;
  // Exit 7: mismatches found (the report is printed all the same).
  if (r.status !== 0 && r.status !== 7) throw new Error(`tasker-ring store verify failed (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StoreVerify;
}
