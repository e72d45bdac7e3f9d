/**
 * The platforms libtasker_worker is published for, each as an optional package
 * `@tasker-systems/worker-<id>` holding the library and npm's `os`, `cpu` and `libc` fields (as napi-rs and
 * koffi projects ship), so npm installs only the one that matches. Adding a target is one line of
 * `PLATFORM_TARGETS`: `npm pack` writes them into the main package's `optionalDependencies`, and
 * `npm run pack:platform` generates each package (scripts/platform-package.ts).
 */

/** One published target: npm's names for its OS and CPU (`process.platform`, `process.arch`) and its C library. */
export interface PlatformTarget {
  /** The package's suffix: `<os>-<cpu>`, then `-gnu` / `-musl` on Linux. */
  readonly id: string;
  readonly os: string;
  readonly cpu: string;
  /** Linux only: the C library the build links against; null elsewhere. */
  readonly libc: Libc | null;
  /** The library file in the package. */
  readonly library: string;
}

export type Libc = 'glibc' | 'musl';

export const PLATFORM_TARGETS: readonly PlatformTarget[] = [{ id: 'linux-x64-gnu', os: 'linux', cpu: 'x64', libc: 'glibc', library: 'libtasker_worker.so' }];

/** The platform package of a target. */
export function platformPackageName(target: PlatformTarget): string {
  return `@tasker-systems/worker-${target.id}`;
}

/** A machine as the resolution sees it. */
export interface HostPlatform {
  platform: string;
  arch: string;
  /** Linux only (see `detectLibc`); null elsewhere. */
  libc: Libc | null;
}

/** The host's name in the targets' terms (`linux-arm64-musl`, `darwin-arm64`), for messages. */
export function hostId(host: HostPlatform): string {
  const abi = host.libc === 'glibc' ? '-gnu' : host.libc === 'musl' ? '-musl' : '';
  return `${host.platform}-${host.arch}${abi}`;
}

/** The target built for `host`, or null when none is published. */
export function targetFor(host: HostPlatform, targets: readonly PlatformTarget[] = PLATFORM_TARGETS): PlatformTarget | null {
  return targets.find((t) => t.os === host.platform && t.cpu === host.arch && t.libc === (host.platform === 'linux' ? host.libc : null)) ?? null;
}

/** The main package's `optionalDependencies` entries for the platform packages, at `version`. */
export function platformDependencies(version: string, targets: readonly PlatformTarget[] = PLATFORM_TARGETS): Record<string, string> {
  return Object.fromEntries(targets.map((t) => [platformPackageName(t), version]));
}
