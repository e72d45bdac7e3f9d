/**
 * The per-platform packages of `src/ffi/platforms.ts`, generated at pack time (as napi-rs's `prepublish` does).
 *
 *   node --import tsx scripts/platform-package.ts [--target ID] [--library PATH] [--pack DIR]
 *     Writes npm/<id>/: a package.json with npm's os, cpu and libc fields and the library, stripped. The target
 *     defaults to this host's; the library to TASKER_LIBRARY_PATH, else ../target/release/ (this host's target
 *     only: another target's library is named with --library). --pack DIR then packs it into DIR and prints
 *     the tarball's path. `strip --strip-unneeded` drops symbols and debug info, not the exported C API;
 *     TASKER_BUNDLE_UNSTRIPPED=1 packages the library as it is.
 *   --inject-dependencies (the main package's prepack): adds every platform package, at the main package's
 *     version, to package.json's optionalDependencies for the tarball, keeping the original aside: the
 *     repository's package.json lists none (they are not published while it is developed, and `npm ci` would
 *     fail on them), so adding a target stays one line of the table.
 *   --restore-manifest (postpack): puts the original package.json back.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { currentHost } from '../src/ffi/library-path.ts';
import { PLATFORM_TARGETS, type PlatformTarget, platformDependencies, platformPackageName, targetFor } from '../src/ffi/platforms.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const manifestPath = join(root, 'package.json');
/** The repository's package.json while a pack runs (not in the package's `files`). */
const originalPath = join(root, 'package.json.prepack-original');

function fail(message: string): never {
  console.error(`platform-package: ${message}`);
  process.exit(1);
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  return process.argv[i + 1] ?? fail(`${name} needs a value`);
}

const mib = (path: string) => `${(statSync(path).size / 2 ** 20).toFixed(1)} MiB`;

function restoreManifest(): void {
  if (existsSync(originalPath)) renameSync(originalPath, manifestPath);
}

function injectDependencies(): void {
  restoreManifest(); // a pack that failed before its postpack left the injected copy
  const text = readFileSync(manifestPath, 'utf8');
  const manifest = JSON.parse(text) as { version: string; optionalDependencies?: Record<string, string> };
  writeFileSync(originalPath, text);
  manifest.optionalDependencies = { ...platformDependencies(manifest.version), ...manifest.optionalDependencies };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`platform-package: optionalDependencies for the tarball: ${Object.keys(platformDependencies(manifest.version)).join(', ')}`);
}

/** Copies (and strips) the library into `dir`. */
function copyLibrary(target: PlatformTarget, source: string, dir: string): void {
  const file = join(dir, target.library);
  copyFileSync(source, file);
  if (process.env.TASKER_BUNDLE_UNSTRIPPED === '1') return;
  // macOS's strip takes -x (local symbols) where binutils' takes --strip-unneeded.
  const r = spawnSync('strip', target.os === 'darwin' ? ['-x', file] : ['--strip-unneeded', file], { stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    fail(`could not strip ${file} (${r.error ? r.error.message : `strip exited ${r.status}`}); install binutils, or set TASKER_BUNDLE_UNSTRIPPED=1`);
  }
}

function writePackage(): void {
  const host = targetFor(currentHost());
  const id =
    option('--target') ?? host?.id ?? fail(`no platform package is defined for this host; the targets: ${PLATFORM_TARGETS.map((t) => t.id).join(', ')}`);
  const target = PLATFORM_TARGETS.find((t) => t.id === id) ?? fail(`unknown target '${id}'; the targets: ${PLATFORM_TARGETS.map((t) => t.id).join(', ')}`);
  const explicit = option('--library') ?? (target === host ? process.env.TASKER_LIBRARY_PATH : undefined);
  if (explicit === undefined && target !== host) fail(`--target ${id} is not this host's: name its library with --library`);
  const source = resolve(explicit ?? join(root, '..', 'target', 'release', target.library));
  if (!existsSync(source)) fail(`${source} not found; build it first: cargo build --release -p tasker-worker-ffi`);

  const main = JSON.parse(readFileSync(existsSync(originalPath) ? originalPath : manifestPath, 'utf8')) as { version: string; license: string };
  const name = platformPackageName(target);
  const dir = join(root, 'npm', target.id);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const manifest = {
    name,
    version: main.version,
    description: `libtasker_worker for ${target.id}: the native library of @tasker-systems/worker (installed with it where it matches)`,
    license: main.license,
    os: [target.os],
    cpu: [target.cpu],
    ...(target.libc === null ? {} : { libc: [target.libc] }),
    files: [target.library],
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(
    join(dir, 'README.md'),
    `# ${name}\n\nThe native library of [@tasker-systems/worker](https://www.npmjs.com/package/@tasker-systems/worker) for ${target.id}. ` +
      'Install @tasker-systems/worker: npm installs this package with it on a matching machine.\n',
  );
  copyLibrary(target, source, dir);
  console.log(`platform-package: ${source} (${mib(source)}) -> npm/${target.id}/${target.library} (${mib(join(dir, target.library))})`);

  const destination = option('--pack');
  if (destination === undefined) return;
  const packed = spawnSync('npm', ['pack', '--silent', '--pack-destination', resolve(destination)], { cwd: dir, encoding: 'utf8' });
  if (packed.status !== 0) fail(`npm pack failed: ${packed.stderr}`);
  const tarball = readdirSync(resolve(destination)).find((f) => f.startsWith(`tasker-systems-worker-${target.id}-`) && f.endsWith('.tgz'));
  if (tarball === undefined) fail(`npm pack wrote no tarball into ${destination}`);
  console.log(join(resolve(destination), tarball));
}

if (process.argv.includes('--inject-dependencies')) injectDependencies();
else if (process.argv.includes('--restore-manifest')) restoreManifest();
else writePackage();
