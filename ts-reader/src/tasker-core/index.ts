/**
 * `@tasker-systems/worker/tasker-core`: tasker-core's native module contract (`NapiModule`) over this
 * package's worker core, ring and step store. tasker-core's TypeScript worker takes its module by
 * injection; hand it `createNapiModule()` instead of the `.node` file's module.
 */

export { WorkerNotInitializedError } from './errors.ts';
export { createNapiModule, type NapiModuleOptions, type TaskerCoreModule } from './module.ts';
export type * from './types.ts';
