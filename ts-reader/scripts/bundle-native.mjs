#!/usr/bin/env node
// Copies libtasker_worker built for this host into native/<platform>-<arch>/ so `npm pack` ships it (the
// adapters look there after TASKER_LIBRARY_PATH). Source: TASKER_LIBRARY_PATH, else ../target/release.
// Runs as `prepack`; fails loudly when there is no library to bundle. `--remove` (as `postpack`) deletes the
// copy again: left in a checkout it would shadow every later build of ../target/release.
// The copy is stripped (`strip --strip-unneeded`: symbols and debug info, not the exported C API): the
// release build keeps debug info for profiling, which is 60% of the file and no use to an installed package.
// Without a `strip` program it fails loudly; TASKER_BUNDLE_UNSTRIPPED=1 bundles the library as it is.
import { spawnSync } from 'node:child_process';
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
const target = join(targetDir, name);
copyFileSync(source, target);
const mib = (path) => `${(statSync(path).size / 2 ** 20).toFixed(1)} MiB`;
if (process.env.TASKER_BUNDLE_UNSTRIPPED !== '1') {
  // macOS's strip takes -x (local symbols) where binutils' takes --strip-unneeded.
  const args = process.platform === 'darwin' ? ['-x', target] : ['--strip-unneeded', target];
  const r = spawnSync('strip', args, { stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    rmSync(join(root, 'native'), { recursive: true, force: true });
    console.error(
      `bundle-native: could not strip ${target} (${r.error ? r.error.message : `strip exited ${r.status}`}); ` +
        'install binutils, or set TASKER_BUNDLE_UNSTRIPPED=1 to bundle it unstripped',
    );
    process.exit(1);
  }
}
console.log(`bundle-native: ${source} (${mib(source)}) -> native/${process.platform}-${process.arch}/${name} (${mib(target)})`);
