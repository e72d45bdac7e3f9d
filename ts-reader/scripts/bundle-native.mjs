#!/usr/bin/env node
// Copies libtasker_worker built for this host into native/<platform>-<arch>/ so `npm pack` ships it (the
// adapters look there after TASKER_LIBRARY_PATH). Source: TASKER_LIBRARY_PATH, else ../target/release.
// Runs as `prepack`; fails loudly when there is no library to bundle. `--remove` (as `postpack`) deletes the
// copy again: left in a checkout it would shadow every later build of ../target/release.
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv.includes('--remove')) {
  rmSync(join(root, 'native'), { recursive: true, force: true });
  process.exit(0);
}
const name = process.platform === 'darwin' ? 'libtasker_worker.dylib' : process.platform === 'win32' ? 'tasker_worker.dll' : 'libtasker_worker.so';
const source = process.env.TASKER_LIBRARY_PATH ? resolve(process.env.TASKER_LIBRARY_PATH) : join(root, '..', 'target', 'release', name);
if (!existsSync(source)) {
  console.error(`bundle-native: ${source} not found; build it first: cargo build --release -p tasker-worker-ffi`);
  process.exit(1);
}
const targetDir = join(root, 'native', `${process.platform}-${process.arch}`);
mkdirSync(targetDir, { recursive: true });
copyFileSync(source, join(targetDir, name));
console.log(`bundle-native: ${source} -> native/${process.platform}-${process.arch}/${name} (${(statSync(source).size / 2 ** 20).toFixed(1)} MiB)`);
