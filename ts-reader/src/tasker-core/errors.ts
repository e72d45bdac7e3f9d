/** Errors of the tasker-core module beyond the adapter's (which it throws as they are). */
import { FfiError } from '../errors.ts';

/**
 * A dispatch or control call before `bootstrapWorker()` (or after `stopWorker()`), as tasker-core's module
 * throws it: same message, and this package's `code`.
 */
export class WorkerNotInitializedError extends FfiError {
  declare readonly code: 'WORKER_NOT_INITIALIZED';

  constructor() {
    super('Worker not initialized — call bootstrapWorker() first', undefined, 'WORKER_NOT_INITIALIZED');
    this.name = 'WorkerNotInitializedError';
  }
}
