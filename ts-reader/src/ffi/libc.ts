/**
 * Which C library a Linux host runs, glibc or musl, as napi-rs decides it: the process report's
 * `glibcVersionRuntime` (glibc) or a musl loader among its shared objects, else `/usr/bin/ldd` naming musl,
 * else a musl loader in `/lib` (`ld-musl-*`). No child process is spawned (Deno would need --allow-run).
 */
import { readdirSync, readFileSync } from 'node:fs';
import process from 'node:process';
import type { Libc } from './platforms.ts';

/** What the detection reads (a seam for tests on hosts this one is not). */
export interface LibcProbe {
  platform: string;
  /** `process.report.getReport()`'s header and shared objects, or null when the runtime has no report. */
  report(): { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] } | null;
  /** A file's text, or null when it cannot be read. */
  readText(path: string): string | null;
  /** A directory's entries, or [] when it cannot be read. */
  list(path: string): string[];
}

const isMuslFile = (f: string) => f.includes('libc.musl-') || f.includes('ld-musl-');

export const hostLibcProbe: LibcProbe = {
  platform: process.platform,
  report() {
    try {
      const report = (process as { report?: { excludeNetwork?: boolean; getReport?: () => unknown } }).report;
      if (typeof report?.getReport !== 'function') return null;
      report.excludeNetwork = true;
      return report.getReport() as ReturnType<LibcProbe['report']>;
    } catch {
      return null;
    }
  },
  readText(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return null;
    }
  },
  list(path) {
    try {
      return readdirSync(path);
    } catch {
      return [];
    }
  },
};

/** glibc or musl on Linux; null on every other OS. A Linux host nothing marks as musl is taken for glibc. */
export function detectLibc(probe: LibcProbe = hostLibcProbe): Libc | null {
  if (probe.platform !== 'linux') return null;
  const report = probe.report();
  if (report?.header?.glibcVersionRuntime) return 'glibc';
  if (Array.isArray(report?.sharedObjects) && report.sharedObjects.some(isMuslFile)) return 'musl';
  const ldd = probe.readText('/usr/bin/ldd');
  if (ldd !== null) return ldd.includes('musl') ? 'musl' : 'glibc';
  return probe.list('/lib').some(isMuslFile) ? 'musl' : 'glibc';
}
