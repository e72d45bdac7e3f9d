/**
 * @tasker-systems/worker: TypeScript step handlers for the tasker Rust worker core, on Node, Bun and Deno.
 * The package root imports no runtime-specific module: koffi, bun:ffi and Deno's FFI are loaded by the
 * adapter that needs them, when it is constructed.
 */

export {
  DoorbellError,
  type DoorbellErrorCode,
  EventDecodeError,
  FfiCallError,
  type FfiCallErrorCode,
  FfiError,
  FfiLibraryError,
  type FfiLibraryErrorCode,
  isFatalError,
  OptionsError,
  type OptionsErrorCode,
  RingAttachError,
  type RingAttachErrorCode,
  RingPeerError,
  type RingPeerErrorCode,
  RingReadError,
  type RingReadErrorCode,
  RingSealedError,
  RingWriteError,
  type RingWriteErrorCode,
  UnsupportedByWorkerError,
  UnsupportedPlatformError,
  WorkerFaultError,
} from './errors.ts';
export { TaskerEventEmitter } from './events/event-emitter.ts';
export { type EventName, EventNames } from './events/event-names.ts';
export { EventPoller, type EventPollerOptions, type PollerStats, type PollerTimers, type WakeTrace } from './events/event-poller.ts';
export type { FfiAdapter } from './ffi/adapter.ts';
export { BunFfiAdapter } from './ffi/bun.ts';
export { DenoFfiAdapter } from './ffi/deno.ts';
export { type CreateAdapterOptions, createFfiAdapter } from './ffi/factory.ts';
export { libraryCandidates, libraryFileName } from './ffi/library-path.ts';
export { isRingAwareAdapter, NativeFfiAdapter, type RingAwareAdapter, TASKER_WORKER_ABI_MAJOR } from './ffi/native-adapter.ts';
export { NodeFfiAdapter } from './ffi/node.ts';
export type * from './protocol.ts';
export { LAYOUT_MAJOR, LAYOUT_MINOR } from './ring/layout.ts';
export { assertSupportedRuntime, detectRuntime, isRuntimeSupported, type RuntimeType } from './runtime.ts';
export { PermanentError, RetryableError } from './worker/errors.ts';
export { type StepContext, type StepHandler, TaskerWorker, type TaskerWorkerOptions, type TaskerWorkerStats } from './worker/worker.ts';
