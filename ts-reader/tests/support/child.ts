/**
 * Runs a script of `tests/children/` in a child process of the runtime running the tests (Node through
 * tsx, Bun, Deno), so a test can look at what only a process's end shows: its exit code, the files it
 * leaves, what it printed.
 */
import { spawn } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { detectRuntime } from '../../src/runtime.ts';

const packageDir = fileURLToPath(new URL('../../', import.meta.url));

export interface ChildResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The stdout lines that are JSON objects, parsed. */
  lines: Array<Record<string, unknown>>;
}

export interface ChildOptions {
  /** Extra environment (merged over this process's); a value of `undefined` removes the variable. */
  env?: Record<string, string | undefined>;
  /** Deno's permission flags (default `-A`). */
  denoFlags?: string[];
  /** Kills the child after this long: a hang fails the test instead of stalling the suite (default 60 s). */
  killAfterMs?: number;
  /** Called with each JSON line as it arrives (to signal the child, for one). */
  onLine?: (line: Record<string, unknown>, child: { kill(signal: NodeJS.Signals): void }) => void;
  /** Called once the child runs (to wait for something outside it, then signal it). */
  whileRunning?: (child: { kill(signal: NodeJS.Signals): void }) => Promise<void>;
}

/** The command line that runs `script` (a path relative to tests/children/, or absolute) on this runtime. */
export function childCommand(script: string, args: string[], denoFlags: string[] = ['-A']): string[] {
  const file = script.startsWith('/') ? script : fileURLToPath(new URL(`../children/${script}`, import.meta.url));
  switch (detectRuntime()) {
    case 'bun':
      return [process.execPath, file, ...args];
    case 'deno':
      return [process.execPath, 'run', ...denoFlags, file, ...args];
    default:
      return [process.execPath, '--import', 'tsx', file, ...args];
  }
}

export function runChild(script: string, args: string[] = [], options: ChildOptions = {}): Promise<ChildResult> {
  const [command, ...argv] = childCommand(script, args, options.denoFlags);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, argv, { cwd: packageDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const lines: Array<Record<string, unknown>> = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 60_000);
    // Signals go through process.kill: Deno's child.kill() makes it report the signal as the cause of the
    // exit even when the child handled it and exited with a code of its own.
    const handle = { kill: (signal: NodeJS.Signals) => void process.kill(child.pid as number, signal) };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line.startsWith('{')) {
          try {
            const parsed = JSON.parse(line) as Record<string, unknown>;
            lines.push(parsed);
            options.onLine?.(parsed, handle);
          } catch {
            // not one of ours
          }
        }
        nl = pending.indexOf('\n');
      }
    });
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    options.whileRunning?.(handle).catch((error: unknown) => {
      child.kill('SIGKILL');
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, lines });
    });
  });
}

/** Prints one JSON line for the parent (children use it). */
export function report(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}
