/**
 * Step handlers for the store's two templates, as in tasker-core's fixtures (see
 * crates/tasker-store/src/templates.rs for the reference math):
 *
 * - linear: `linear_step_1` squares the task's `even_number`; steps 2-4 square their parent (final: n^16).
 * - diamond: `diamond_start` squares `even_number`; branch B squares it, branch C doubles it; `diamond_end`
 *   sums both branches (final: n^4 + 2n^2).
 *
 * Each returns `{ value, operation, input }`; a parent's value is read from `dependency_results`.
 */
import { PermanentError, type StepContext, type TaskerWorker } from '../src/index.ts';

function evenNumber(ctx: StepContext): number {
  const n = ctx.task.context.even_number;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new PermanentError(`task context has no integer even_number (got ${JSON.stringify(n)})`);
  return n;
}

function parentValue(ctx: StepContext, parent: string): number {
  const result = ctx.dependencyResults.results[parent] as { result?: { value?: unknown } } | undefined;
  const value = result?.result?.value;
  if (typeof value !== 'number') throw new PermanentError(`dependency result of '${parent}' has no numeric value`);
  return value;
}

/** Squares `input`, refusing results JS numbers cannot hold exactly (the store keeps them as i64). */
function square(input: number): number {
  const value = input * input;
  if (!Number.isSafeInteger(value)) throw new PermanentError(`${input}^2 exceeds the exact integer range`);
  return value;
}

/**
 * Registers the handlers of both templates on `worker`, except those named in `skip`. With `delayMs` > 0
 * each handler first waits that long (simulated I/O, for tests and benchmarks), without blocking the others.
 */
export function registerExampleHandlers(worker: TaskerWorker, skip: readonly string[] = [], delayMs = 0): TaskerWorker {
  const squareInput = (ctx: StepContext) => {
    const n = evenNumber(ctx);
    return { value: square(n), operation: 'square_input', input: n };
  };
  const squareParent = (parent: string) => (ctx: StepContext) => {
    const p = parentValue(ctx, parent);
    return { value: square(p), operation: 'square', input: p };
  };
  const target = {
    register(name: string, handler: (ctx: StepContext) => unknown) {
      if (skip.includes(name)) return target;
      if (delayMs > 0) worker.register(name, (ctx) => new Promise((resolve) => setTimeout(resolve, delayMs)).then(() => handler(ctx)));
      else worker.register(name, handler);
      return target;
    },
  };
  target
    .register('LinearWorkflow.StepHandlers.LinearStep1Handler', squareInput)
    .register('LinearWorkflow.StepHandlers.LinearStep2Handler', squareParent('linear_step_1'))
    .register('LinearWorkflow.StepHandlers.LinearStep3Handler', squareParent('linear_step_2'))
    .register('LinearWorkflow.StepHandlers.LinearStep4Handler', squareParent('linear_step_3'))
    .register('DiamondWorkflow.StepHandlers.DiamondStartHandler', squareInput)
    .register('DiamondWorkflow.StepHandlers.DiamondBranchBHandler', squareParent('diamond_start'))
    .register('DiamondWorkflow.StepHandlers.DiamondBranchCHandler', (ctx) => {
      const p = parentValue(ctx, 'diamond_start');
      return { value: 2 * p, operation: 'double', input: p };
    })
    .register('DiamondWorkflow.StepHandlers.DiamondEndHandler', (ctx) => {
      const b = parentValue(ctx, 'diamond_branch_b');
      const c = parentValue(ctx, 'diamond_branch_c');
      return { value: b + c, operation: 'sum', input: [b, c] };
    });
  return worker;
}
