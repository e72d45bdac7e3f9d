/**
 * Per-platform packages: the platform table, libc detection (napi-rs's way) on hosts this one is not, the
 * library search order, UNSUPPORTED_PLATFORM, and the main package's optionalDependencies following the table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { describe, it } from 'node:test';
import { FfiLibraryError, UnsupportedPlatformError } from '../src/errors.ts';
import { detectLibc, type LibcProbe } from '../src/ffi/libc.ts';
import { currentHost, type LibrarySearch, libraryCandidates, openLibrary } from '../src/ffi/library-path.ts';
import { type HostPlatform, hostId, PLATFORM_TARGETS, platformDependencies, platformPackageName, targetFor } from '../src/ffi/platforms.ts';

const linuxGnu: HostPlatform = { platform: 'linux', arch: 'x64', libc: 'glibc' };
const linuxMusl: HostPlatform = { platform: 'linux', arch: 'x64', libc: 'musl' };
const linuxArm: HostPlatform = { platform: 'linux', arch: 'arm64', libc: 'glibc' };
const macArm: HostPlatform = { platform: 'darwin', arch: 'arm64', libc: null };
const windows: HostPlatform = { platform: 'win32', arch: 'x64', libc: null };

/** A probe of a made-up host: each source answers as given, or as absent. */
function probe(over: Partial<LibcProbe>): LibcProbe {
  return { platform: 'linux', report: () => null, readText: () => null, list: () => [], ...over };
}

function withoutLibraryEnv<T>(f: () => T): T {
  const saved = process.env.TASKER_LIBRARY_PATH;
  delete process.env.TASKER_LIBRARY_PATH;
  try {
    return f();
  } finally {
    if (saved !== undefined) process.env.TASKER_LIBRARY_PATH = saved;
  }
}

describe('platform table', () => {
  it('names each package after its target and matches hosts by OS, CPU and C library', () => {
    assert.equal(platformPackageName(PLATFORM_TARGETS[0] as (typeof PLATFORM_TARGETS)[0]), '@tasker-systems/worker-linux-x64-gnu');
    assert.equal(targetFor(linuxGnu)?.id, 'linux-x64-gnu');
    assert.equal(targetFor(linuxMusl), null, 'a musl host does not get the glibc build');
    assert.equal(targetFor(linuxArm), null);
    assert.equal(targetFor(macArm), null);
    assert.equal(targetFor(windows), null);
    assert.deepEqual([hostId(linuxGnu), hostId(linuxMusl), hostId(macArm), hostId(windows)], ['linux-x64-gnu', 'linux-x64-musl', 'darwin-arm64', 'win32-x64']);
  });

  it('adding a target is one line: a table with more entries resolves them', () => {
    const more = [
      ...PLATFORM_TARGETS,
      { id: 'linux-x64-musl', os: 'linux', cpu: 'x64', libc: 'musl', library: 'libtasker_worker.so' },
      { id: 'darwin-arm64', os: 'darwin', cpu: 'arm64', libc: null, library: 'libtasker_worker.dylib' },
    ] as const;
    assert.equal(targetFor(linuxMusl, more)?.id, 'linux-x64-musl');
    assert.equal(targetFor(linuxGnu, more)?.id, 'linux-x64-gnu');
    assert.equal(targetFor(macArm, more)?.id, 'darwin-arm64');
    assert.deepEqual(Object.keys(platformDependencies('1.2.3', more)), [
      '@tasker-systems/worker-linux-x64-gnu',
      '@tasker-systems/worker-linux-x64-musl',
      '@tasker-systems/worker-darwin-arm64',
    ]);
  });
});

describe('libc detection (napi-rs: process report, /usr/bin/ldd, /lib/ld-musl-*)', () => {
  it('is null off Linux', () => {
    assert.equal(detectLibc(probe({ platform: 'darwin', readText: () => 'musl' })), null);
  });
  it("the report's glibcVersionRuntime means glibc, a musl loader among its shared objects musl", () => {
    assert.equal(detectLibc(probe({ report: () => ({ header: { glibcVersionRuntime: '2.36' }, sharedObjects: [] }) })), 'glibc');
    assert.equal(detectLibc(probe({ report: () => ({ header: {}, sharedObjects: ['/lib/ld-musl-x86_64.so.1', '/usr/lib/libstdc++.so.6'] }) })), 'musl');
  });
  it('without a telling report, /usr/bin/ldd decides', () => {
    assert.equal(
      detectLibc(probe({ report: () => ({ header: {}, sharedObjects: [] }), readText: () => '#!/bin/sh\nexec /lib/ld-musl-aarch64.so.1 --list "$@"' })),
      'musl',
    );
    assert.equal(detectLibc(probe({ readText: () => '#! /bin/bash\n# ldd (GNU libc) 2.36' })), 'glibc');
  });
  it('without ldd, a musl loader in /lib means musl, else glibc', () => {
    assert.equal(detectLibc(probe({ list: () => ['ld-musl-x86_64.so.1', 'libc.musl-x86_64.so.1'] })), 'musl');
    assert.equal(detectLibc(probe({ list: () => ['ld-linux-x86-64.so.2'] })), 'glibc');
  });
  it('this host is detected as what it is', () => {
    const host = currentHost();
    assert.equal(host.platform, process.platform);
    if (process.platform === 'linux') {
      const glibc = readFileSync('/usr/bin/ldd', 'utf8').includes('GNU libc') || readFileSync('/usr/bin/ldd', 'utf8').includes('GLIBC');
      assert.equal(host.libc, glibc ? 'glibc' : 'musl');
    } else assert.equal(host.libc, null);
  });
});

describe('library search order', () => {
  const installed = '/app/node_modules/@tasker-systems/worker';
  const packages = (name: string) => (name === '@tasker-systems/worker-linux-x64-gnu' ? '/app/node_modules/@tasker-systems/worker-linux-x64-gnu' : null);

  it('explicit path, then TASKER_LIBRARY_PATH: each the only candidate', () => {
    const saved = process.env.TASKER_LIBRARY_PATH;
    try {
      process.env.TASKER_LIBRARY_PATH = '/opt/x/libtasker_worker.so';
      assert.deepEqual(libraryCandidates(undefined, installed, linuxGnu, packages).files, ['/opt/x/libtasker_worker.so']);
      assert.deepEqual(libraryCandidates('/explicit.so', installed, linuxGnu, packages).files, ['/explicit.so']);
      assert.equal(libraryCandidates('/explicit.so', installed, macArm, packages).systemName, null);
    } finally {
      if (saved === undefined) delete process.env.TASKER_LIBRARY_PATH;
      else process.env.TASKER_LIBRARY_PATH = saved;
    }
  });

  it("installed: the platform package's library only, never a repository's or the caller's target/", () =>
    withoutLibraryEnv(() => {
      const search = libraryCandidates(undefined, installed, linuxGnu, packages);
      assert.deepEqual(search.files, ['/app/node_modules/@tasker-systems/worker-linux-x64-gnu/libtasker_worker.so']);
      assert.equal(search.systemName, 'libtasker_worker.so');
      assert.equal(search.target?.id, 'linux-x64-gnu');
      // The platform package not installed (--omit=optional): nothing but the system loader.
      assert.deepEqual(libraryCandidates(undefined, installed, linuxGnu, () => null).files, []);
    }));

  it("a checkout: the platform package if installed, then the repository's target/release and target/debug", () =>
    withoutLibraryEnv(() => {
      const { files } = libraryCandidates(undefined, '/src/tasker/ts-reader', linuxGnu, packages);
      assert.deepEqual(files, [
        '/app/node_modules/@tasker-systems/worker-linux-x64-gnu/libtasker_worker.so',
        '/src/tasker/target/release/libtasker_worker.so',
        '/src/tasker/target/debug/libtasker_worker.so',
      ]);
      // A development checkout on a platform without a package still finds its own build.
      assert.deepEqual(libraryCandidates(undefined, '/src/tasker/ts-reader', macArm, packages).files, [
        '/src/tasker/target/release/libtasker_worker.dylib',
        '/src/tasker/target/debug/libtasker_worker.dylib',
      ]);
    }));
});

describe('UNSUPPORTED_PLATFORM', () => {
  const nothingLoads = (path: string): never => {
    throw new FfiLibraryError(`failed to load ${path}: cannot open shared object file`, undefined, 'LIBRARY_LOAD_FAILED');
  };
  const search = (host: HostPlatform): LibrarySearch =>
    withoutLibraryEnv(() => libraryCandidates(undefined, '/app/node_modules/@tasker-systems/worker', host, () => null));

  for (const host of [macArm, linuxMusl, linuxArm, windows]) {
    it(`${hostId(host)}: a typed error naming the supported platforms`, () => {
      assert.throws(
        () => openLibrary(undefined, nothingLoads, search(host)),
        (error: unknown) => {
          assert.ok(error instanceof UnsupportedPlatformError && error instanceof FfiLibraryError);
          assert.equal(error.code, 'UNSUPPORTED_PLATFORM');
          assert.equal(error.platform, hostId(host));
          assert.deepEqual(error.supported, ['linux-x64-gnu']);
          assert.match(error.message, new RegExp(`no native library for ${hostId(host)}: it is published for linux-x64-gnu`));
          assert.match(error.message, /TASKER_LIBRARY_PATH/);
          return true;
        },
      );
    });
  }

  it('a supported platform whose package is missing: LIBRARY_NOT_FOUND naming the package to install', () => {
    assert.throws(
      () => openLibrary(undefined, nothingLoads, search(linuxGnu)),
      (error: unknown) =>
        error instanceof FfiLibraryError &&
        !(error instanceof UnsupportedPlatformError) &&
        error.code === 'LIBRARY_NOT_FOUND' &&
        /install its platform package, @tasker-systems\/worker-linux-x64-gnu/.test(error.message),
    );
  });

  it('a library the system loader finds is used on any platform', () => {
    assert.equal(
      openLibrary(undefined, (path) => `opened ${path}`, search(macArm)),
      'opened libtasker_worker.dylib',
    );
  });
});
