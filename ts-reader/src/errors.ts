/**
 * Typed errors. Every error this package throws is an `FfiError` with a stable string `code`, so callers
 * can branch on `err.code` without parsing messages. The seed's three classes keep their names and
 * constructor shapes (`new FfiError(message, cause?)`).
 */

/** Base error for FFI and ring operations. */
export class FfiError extends Error {
  /** Stable machine-readable reason. */
  readonly code: string;
  override readonly cause?: unknown;

  constructor(message: string, cause?: unknown, code = 'FFI_ERROR') {
    super(message);
    this.name = 'FfiError';
    this.cause = cause;
    this.code = code;
  }
}

export type FfiLibraryErrorCode =
  | 'LIBRARY_NOT_FOUND'
  | 'LIBRARY_LOAD_FAILED'
  | 'ABI_MISMATCH'
  | 'UNSUPPORTED_RUNTIME'
  | 'UNSUPPORTED_PLATFORM'
  | 'FFI_MODULE_MISSING';

/** The native library could not be found, loaded, or is of an incompatible version. */
export class FfiLibraryError extends FfiError {
  declare readonly code: FfiLibraryErrorCode;
  /** Every path tried, in order (empty when the failure was not about finding the file). */
  readonly triedPaths: readonly string[];

  constructor(message: string, cause?: unknown, code: FfiLibraryErrorCode = 'LIBRARY_LOAD_FAILED', triedPaths: readonly string[] = []) {
    super(message, cause, code);
    this.name = 'FfiLibraryError';
    this.triedPaths = triedPaths;
  }
}

/**
 * No libtasker_worker is published for this machine (no `@tasker-systems/worker-<platform>` package matches
 * its OS, CPU and C library) and none was found elsewhere (`TASKER_LIBRARY_PATH`, the system loader).
 */
export class UnsupportedPlatformError extends FfiLibraryError {
  declare readonly code: 'UNSUPPORTED_PLATFORM';
  /** This machine, in the platform packages' terms (`darwin-arm64`, `linux-x64-musl`). */
  readonly platform: string;
  /** The platforms a package is published for. */
  readonly supported: readonly string[];

  constructor(platform: string, supported: readonly string[], triedPaths: readonly string[]) {
    super(
      `@tasker-systems/worker has no native library for ${platform}: it is published for ${supported.join(', ')}. ` +
        'Build libtasker_worker for this machine (cargo build --release -p tasker-worker-ffi) and set TASKER_LIBRARY_PATH to it.',
      undefined,
      'UNSUPPORTED_PLATFORM',
      triedPaths,
    );
    this.name = 'UnsupportedPlatformError';
    this.platform = platform;
    this.supported = supported;
  }
}

export type FfiCallErrorCode = 'CALL_FAILED' | 'BOOTSTRAP_FAILED' | 'NULL_RESULT' | 'INVALID_JSON' | 'INVALID_ARGUMENT' | 'CLOSED' | 'RING_UNAVAILABLE';

/** A call into the library failed or returned something unusable. */
export class FfiCallError extends FfiError {
  declare readonly code: FfiCallErrorCode;

  constructor(message: string, cause?: unknown, code: FfiCallErrorCode = 'CALL_FAILED') {
    super(message, cause, code);
    this.name = 'FfiCallError';
  }
}

export type RingAttachErrorCode = 'BAD_MAGIC' | 'NOT_READY' | 'BAD_HEADER' | 'UNSUPPORTED_MAJOR' | 'UNKNOWN_FEATURES' | 'TRUNCATED' | 'SIZE_MISMATCH';

/** A mapping failed the attach checks of layout-spec.md section 11.2 (A3-A17). */
export class RingAttachError extends FfiError {
  declare readonly code: RingAttachErrorCode;

  constructor(code: RingAttachErrorCode, message: string) {
    super(`region attach refused (${code}): ${message}`, undefined, code);
    this.name = 'RingAttachError';
  }
}

export type RingReadErrorCode =
  | 'POSITIONS_CORRUPT'
  | 'MISALIGNED'
  | 'BAD_PADDING'
  | 'LENGTH_PAST_PUBLISHED'
  | 'LENGTH_TOO_SMALL'
  | 'FRAME_TOO_LARGE'
  | 'STRADDLES'
  | 'UNKNOWN_RECORD_TYPE'
  | 'UNKNOWN_FLAGS'
  | 'FRAGMENT_OUT_OF_ORDER'
  | 'SEQUENCE_GAP'
  | 'MESSAGE_TOO_LARGE'
  | 'CLAIM_CORRUPT';

/**
 * A record failed a check of layout-spec.md section 9.2, or the consumer's claim word held a value neither
 * party wrote (`CLAIM_CORRUPT`, section 9.5). Sticky: the reader is poisoned and every later
 * read throws the same error (a corrupt ring cannot be resynchronised safely).
 */
export class RingReadError extends FfiError {
  declare readonly code: RingReadErrorCode;
  /** Ring position of the offending record. */
  readonly position: number;

  constructor(code: RingReadErrorCode, position: number, detail: string) {
    super(`ring is corrupt at position ${position} (${code}): ${detail}`, undefined, code);
    this.name = 'RingReadError';
    this.position = position;
  }
}

export type RingWriteErrorCode = 'MESSAGE_TOO_LARGE' | 'INVALID_EVENT_ID';

/** A completion cannot be written as given. */
export class RingWriteError extends FfiError {
  declare readonly code: RingWriteErrorCode;

  constructor(code: RingWriteErrorCode, message: string) {
    super(message, undefined, code);
    this.name = 'RingWriteError';
  }
}

/**
 * The producer sealed the events ring (layout-spec.md sections 8.1 and 9.5): the Rust worker core is finishing
 * its stop and hands every message the reader has not claimed to its source. The orderly end of a ring, not
 * corruption: sticky (the reader delivers nothing more), and the poller stops quietly on it (no `onError`,
 * not fatal for a `TaskerWorker`, which follows with a graceful stop).
 */
export class RingSealedError extends FfiError {
  declare readonly code: 'RING_SEALED';

  constructor(message: string) {
    super(message, undefined, 'RING_SEALED');
    this.name = 'RingSealedError';
  }
}

/**
 * The worker core on the other side cannot take this request: GIVE_BACK and CHECKPOINT need a layout 1.1
 * region (`layout_minor` >= 1) on the ring transport, or the library's `give_back_step_event` /
 * `checkpoint_yield_step_event` exports on the ffi transport (layout-spec.md section 16). Nothing was sent.
 */
export class UnsupportedByWorkerError extends FfiError {
  declare readonly code: 'UNSUPPORTED_BY_WORKER';
  /** What was asked for. */
  readonly feature: 'give_back' | 'checkpoint';

  constructor(feature: 'give_back' | 'checkpoint', why: string) {
    super(`the worker core cannot take a ${feature === 'give_back' ? 'give-back' : 'checkpoint'}: ${why}`, undefined, 'UNSUPPORTED_BY_WORKER');
    this.name = 'UnsupportedByWorkerError';
    this.feature = feature;
  }
}

export type RingPeerErrorCode = 'ROLE_TAKEN' | 'PEER_DEAD' | 'REGION_TRUNCATED' | 'CLOSED';

/** The ring cannot be used: its role is held by a live process, its peer died, or it was closed. */
export class RingPeerError extends FfiError {
  declare readonly code: RingPeerErrorCode;

  constructor(code: RingPeerErrorCode, message: string) {
    super(message, undefined, code);
    this.name = 'RingPeerError';
  }
}

/** One step event's payload could not be decoded (not JSON, or not an event). Not sticky. */
export class EventDecodeError extends FfiError {
  declare readonly code: 'INVALID_EVENT';
  /** The first bytes of the payload as text, for the log. */
  readonly excerpt: string;

  constructor(message: string, excerpt: string, cause?: unknown) {
    super(message, cause, 'INVALID_EVENT');
    this.name = 'EventDecodeError';
    this.excerpt = excerpt;
  }
}

/**
 * The Rust worker core stopped on its own (a pump panic, a corrupt completions ring, a truncated region):
 * nothing moves any more. Fatal: the poller stops and a `TaskerWorker` stops with it.
 */
export class WorkerFaultError extends FfiError {
  declare readonly code: 'WORKER_FAULT';
  /** The phase the worker core was in. */
  readonly phase: string;
  /** What happened, as the worker core reported it. */
  readonly reason: string;

  constructor(phase: string, reason: string) {
    super(`the worker core stopped on its own (while ${phase}): ${reason}`, undefined, 'WORKER_FAULT');
    this.name = 'WorkerFaultError';
    this.phase = phase;
    this.reason = reason;
  }
}

export type DoorbellErrorCode = 'DOORBELL_NOT_PERMITTED' | 'DOORBELL_UNAVAILABLE';

/**
 * The doorbell socket cannot be used. Not fatal: polling goes on at the regular tick, so an event that
 * arrives while the poller is idle waits up to one `pollingIntervalMs`. `DOORBELL_NOT_PERMITTED`: the
 * runtime refused the connection (Deno without `--allow-write`).
 */
export class DoorbellError extends FfiError {
  declare readonly code: DoorbellErrorCode;
  /** The socket's path. */
  readonly path: string;

  constructor(code: DoorbellErrorCode, path: string, message: string, cause?: unknown) {
    super(message, cause, code);
    this.name = 'DoorbellError';
    this.path = path;
  }
}

export type OptionsErrorCode = 'UNKNOWN_OPTION';

/** An options object of this package holds a key it does not know (a typo, most likely). */
export class OptionsError extends FfiError {
  declare readonly code: OptionsErrorCode;
  /** The key as written. */
  readonly key: string;
  /** The existing key it most likely meant, if one is close. */
  readonly suggestion: string | null;

  constructor(what: string, key: string, known: readonly string[], suggestion: string | null) {
    const guess = suggestion === null ? '' : `; did you mean '${suggestion}'?`;
    super(`${what}: unknown option '${key}'${guess} (the options: ${known.join(', ')})`, undefined, 'UNKNOWN_OPTION');
    this.name = 'OptionsError';
    this.key = key;
    this.suggestion = suggestion;
  }
}

/** The errors that stop a poller (and a worker): the ring or the worker core cannot be used any more. */
export function isFatalError(error: unknown): error is RingReadError | RingPeerError | WorkerFaultError {
  return error instanceof RingReadError || error instanceof RingPeerError || error instanceof WorkerFaultError;
}
