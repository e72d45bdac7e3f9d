/**
 * `@tasker-systems/worker/tasker-core` driven the way tasker-core's TypeScript worker drives its native module:
 * their poller's pattern (up to 100 `pollStepEvents()` per 10 ms tick, starvation checks every 100 ticks,
 * cleanups every 1000), a subscriber that answers every event with a `NapiStepExecutionResult`, refusals,
 * checkpoint yields, lifecycle and metrics, domain events read by their in-process event poller, against the
 * real libtasker_worker and a throwaway SQLite store.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { after, describe, it } from 'node:test';
import { runTaskerCoreWorker } from '../examples/tasker-core-worker.ts';
import { FfiCallError } from '../src/errors.ts';
import type { BootstrapConfig as WorkerBootstrapConfig } from '../src/protocol.ts';
import { clientCall, createTaskArgs, listTasksArgs } from '../src/tasker-core/client.ts';
import { DomainEventFeed } from '../src/tasker-core/domain-events.ts';
import {
  createNapiModule,
  type NapiDomainEvent,
  type NapiStepEvent,
  type NapiStepExecutionResult,
  type TaskerCoreModule,
  WorkerNotInitializedError,
} from '../src/tasker-core/index.ts';
import { moduleAdapter } from '../src/tasker-core/module.ts';
import { openAdapter, sleep, stopStrayWorker, waitFor } from './support/adapter.ts';
import { enqueue, storeSteps, tempDir, verifyStore } from './support/store.ts';

// ---- the contract's shapes: each key with its type; `?` marks an optional one --------------------------------

type Kind = 'string' | 'boolean' | 'number' | 'object' | 'array' | 'any';
type Shape = Record<string, Kind | `${Kind}?`>;

const EVENT: Shape = {
  eventId: 'string',
  taskUuid: 'string',
  stepUuid: 'string',
  correlationId: 'string',
  traceId: 'string?',
  spanId: 'string?',
  taskCorrelationId: 'string',
  parentCorrelationId: 'string?',
  task: 'object',
  workflowStep: 'object',
  stepDefinition: 'object',
  dependencyResults: 'object',
};
const TASK: Shape = {
  taskUuid: 'string',
  namedTaskUuid: 'string',
  name: 'string',
  namespace: 'string',
  version: 'string',
  context: 'any?',
  correlationId: 'string',
  parentCorrelationId: 'string?',
  complete: 'boolean',
  priority: 'number',
  initiator: 'string?',
  sourceSystem: 'string?',
  reason: 'string?',
  tags: 'any?',
  identityHash: 'string',
  createdAt: 'string',
  updatedAt: 'string',
  requestedAt: 'string',
};
const WORKFLOW_STEP: Shape = {
  workflowStepUuid: 'string',
  taskUuid: 'string',
  namedStepUuid: 'string',
  name: 'string',
  templateStepName: 'string',
  retryable: 'boolean',
  maxAttempts: 'number',
  attempts: 'number',
  inProcess: 'boolean',
  processed: 'boolean',
  inputs: 'any?',
  results: 'any?',
  backoffRequestSeconds: 'number?',
  processedAt: 'string?',
  lastAttemptedAt: 'string?',
  createdAt: 'string',
  updatedAt: 'string',
  checkpoint: 'any?',
};
const STEP_DEFINITION: Shape = {
  name: 'string',
  description: 'string?',
  handlerCallable: 'string',
  handlerMethod: 'string?',
  handlerResolver: 'string?',
  handlerInitialization: 'any',
  systemDependency: 'string?',
  dependencies: 'array',
  timeoutSeconds: 'number?',
  retryRetryable: 'boolean',
  retryMaxAttempts: 'number',
  retryBackoff: 'string',
  retryBackoffBaseMs: 'number?',
  retryMaxBackoffMs: 'number?',
};
const DEPENDENCY: Shape = {
  stepUuid: 'string',
  success: 'boolean',
  result: 'any',
  status: 'string',
  errorMessage: 'string?',
  errorType: 'string?',
  errorRetryable: 'boolean?',
};

function kindOf(value: unknown): Kind {
  if (Array.isArray(value)) return 'array';
  return typeof value as Kind;
}

/** Every way `value` departs from `shape`: a missing required key, a key of another type, a key not in the contract. */
function shapeProblems(value: Record<string, unknown>, shape: Shape, path: string): string[] {
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(shape)) {
    const optional = spec.endsWith('?');
    const kind = (optional ? spec.slice(0, -1) : spec) as Kind;
    if (!(key in value)) {
      if (!optional) problems.push(`${path}${key}: missing`);
      continue;
    }
    const got = kindOf(value[key]);
    if (kind !== 'any' && got !== kind) problems.push(`${path}${key}: ${got}, not ${kind}`);
  }
  for (const key of Object.keys(value)) if (!(key in shape)) problems.push(`${path}${key}: not in the contract`);
  return problems;
}

/** Paths of every key, at any depth, whose value is `undefined`. */
function undefinedKeys(value: unknown, path = ''): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const found: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) found.push(`${path}${key}`);
    else found.push(...undefinedKeys(v, `${path}${key}.`));
  }
  return found;
}

function eventProblems(event: NapiStepEvent): string[] {
  const problems = [
    ...shapeProblems(event as unknown as Record<string, unknown>, EVENT, ''),
    ...shapeProblems(event.task as unknown as Record<string, unknown>, TASK, 'task.'),
    ...shapeProblems(event.workflowStep as unknown as Record<string, unknown>, WORKFLOW_STEP, 'workflowStep.'),
    ...shapeProblems(event.stepDefinition as unknown as Record<string, unknown>, STEP_DEFINITION, 'stepDefinition.'),
    ...undefinedKeys(event).map((p) => `${p}: undefined`),
  ];
  for (const [name, dependency] of Object.entries(event.dependencyResults)) {
    problems.push(...shapeProblems(dependency as unknown as Record<string, unknown>, DEPENDENCY, `dependencyResults.${name}.`));
  }
  return problems;
}

// ---- driving the module as tasker-core's worker does --------------------------------------------------------------

/** A module bootstrapped from a config file of this package's keys (`configPath`), stopped and closed after `body`. */
async function withModule(keys: WorkerBootstrapConfig, body: (module: TaskerCoreModule) => Promise<void>, environment?: string): Promise<void> {
  const dir = tempDir('tasker-core-config');
  const configPath = `${dir.path}/worker.json`;
  writeFileSync(configPath, JSON.stringify({ log_stderr: false, log_level: 'warn', ...keys }));
  const module = createNapiModule(environment === undefined ? {} : { environment });
  try {
    module.bootstrapWorker({ namespace: 'default', configPath });
    await body(module);
  } finally {
    module.stopWorker();
    module.close();
    dir.remove();
  }
}

/** A fresh SQLite store with `tasks` linear tasks; `body` gets its URL. */
async function withStore(tasks: number, body: (url: string) => Promise<void>): Promise<void> {
  const dir = tempDir('tasker-core-store');
  try {
    const url = `sqlite:${dir.path}/steps.db`;
    enqueue(url, tasks);
    await body(url);
  } finally {
    dir.remove();
  }
}

/**
 * tasker-core's `EventPoller`: every 10 ms, up to 100 `pollStepEvents()` until one returns null, each event to
 * `onEvent`; `checkStarvationWarnings()` + `getFfiDispatchMetrics()` every 100 ticks, `cleanupTimeouts()`
 * every 1000. Runs until `done()` is true. Returns the most events one tick took.
 */
function theirPoller(module: TaskerCoreModule, onEvent: (event: NapiStepEvent) => void, done: () => boolean, timeoutMs = 120_000): Promise<number> {
  let ticks = 0;
  let busiest = 0;
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        ticks += 1;
        let taken = 0;
        for (let i = 0; i < 100; i++) {
          const event = module.pollStepEvents();
          if (event === null) break;
          taken += 1;
          onEvent(event);
        }
        busiest = Math.max(busiest, taken);
        if (ticks % 100 === 0) {
          module.checkStarvationWarnings();
          module.getFfiDispatchMetrics();
        }
        if (ticks % 1000 === 0) module.cleanupTimeouts();
        if (done()) {
          clearInterval(timer);
          resolve(busiest);
        } else if (Date.now() > deadline) throw new Error('timed out');
      } catch (error) {
        clearInterval(timer);
        reject(error);
      }
    }, 10);
  });
}

/** The right answer for a `linear` step (each step squares its input), as tasker-core's subscriber builds it. */
function linearResult(event: NapiStepEvent): NapiStepExecutionResult {
  const operation = (event.stepDefinition.handlerInitialization as { operation: string }).operation;
  const parent = event.stepDefinition.dependencies[0];
  const parentResult = event.dependencyResults[parent ?? '']?.result as { value: number } | undefined;
  const input = operation === 'square_input' ? (event.task.context as { even_number: number }).even_number : (parentResult?.value ?? Number.NaN);
  return {
    stepUuid: event.stepUuid,
    success: true,
    result: { value: input * input, operation, input },
    status: 'completed',
    metadata: { executionTimeMs: 1.7, completedAt: new Date().toISOString(), workerId: 'tasker-core-test' },
  };
}

async function nextEvent(module: TaskerCoreModule, what = 'an event'): Promise<NapiStepEvent> {
  let event: NapiStepEvent | null = null;
  await waitFor(what, () => {
    event ??= module.pollStepEvents();
    return event !== null;
  });
  return event as unknown as NapiStepEvent;
}

const invalidArgument = (error: unknown) => error instanceof FfiCallError && error.code === 'INVALID_ARGUMENT' && /^Invalid argument: /.test(error.message);
const notInitialized = (error: unknown) => error instanceof WorkerNotInitializedError && error.code === 'WORKER_NOT_INITIALIZED';
const NEVER = '0190f3a2-7c1e-7b3a-9d2e-00000000dead';

describe('tasker-core module (createNapiModule)', () => {
  after(stopStrayWorker);

  it("a stopped worker another user of the library left behind is not this module's", async () => {
    const other = openAdapter();
    other.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 1 } });
    other.stopWorker();
    other.close();
    const module = createNapiModule();
    try {
      module.getRustVersion(); // loads the library, which still holds the stopped worker's status
      assert.deepEqual(module.getWorkerStatus(), { success: true, running: false, status: 'stopped' });
      assert.deepEqual(module.stopWorker(), { success: true, running: false, status: 'not_running' });
    } finally {
      module.close();
    }
  });

  it('lifecycle: versions, status before, during and after a worker, one worker per process', async () => {
    const module = createNapiModule({ environment: 'test' });
    try {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
      assert.equal(module.getVersion(), pkg.version);
      assert.match(module.getRustVersion(), /^libtasker_worker \(C ABI 1, region layout 1\.\d+\) at .+/);
      assert.equal(module.healthCheck(), true);
      assert.equal(module.isWorkerRunning(), false);
      assert.deepEqual(module.getWorkerStatus(), { success: true, running: false, status: 'stopped' });
      assert.deepEqual(module.stopWorker(), { success: true, running: false, status: 'not_running' });
      const result: NapiStepExecutionResult = {
        stepUuid: NEVER,
        success: true,
        result: {},
        status: 'completed',
        metadata: { executionTimeMs: 0, completedAt: '' },
      };
      for (const call of [
        () => module.pollStepEvents(),
        () => module.pollInProcessEvents(),
        () => module.completeStepEvent(NEVER, result),
        () => module.checkpointYieldStepEvent(NEVER, { stepUuid: NEVER, cursor: 0, itemsProcessed: 0 }),
        () => module.getFfiDispatchMetrics(),
        () => module.checkStarvationWarnings(),
        () => module.cleanupTimeouts(),
        () => module.transitionToGracefulShutdown(),
      ]) {
        assert.throws(call, notInitialized);
      }
      assert.throws(
        () => module.bootstrapWorker({ configPath: '/nonexistent/worker.json' }),
        (e: unknown) => e instanceof FfiCallError && e.code === 'BOOTSTRAP_FAILED' && e.message.includes('/nonexistent/worker.json'),
      );
      await withStore(1, async (url) => {
        const dir = tempDir('tasker-core-typo');
        try {
          writeFileSync(`${dir.path}/typo.json`, JSON.stringify({ database_url: url, namespcae: 'x' }));
          assert.throws(
            () => module.bootstrapWorker({ configPath: `${dir.path}/typo.json` }),
            (e: unknown) => e instanceof FfiCallError && e.code === 'BOOTSTRAP_FAILED' && /namespace/.test(e.message),
          );
          writeFileSync(`${dir.path}/worker.json`, JSON.stringify({ database_url: url, log_stderr: false, log_level: 'warn' }));
          const boot = module.bootstrapWorker({ namespace: 'default', configPath: `${dir.path}/worker.json` });
          assert.equal(boot.success, true);
          assert.equal(boot.status, 'started');
          assert.equal(typeof boot.message, 'string');
          assert.equal(typeof boot.workerId, 'string');
          const again = module.bootstrapWorker({ namespace: 'default', configPath: `${dir.path}/worker.json` });
          assert.deepEqual(
            { success: again.success, status: again.status, workerId: again.workerId },
            { success: true, status: 'already_running', workerId: boot.workerId },
          );
          assert.equal(module.isWorkerRunning(), true);
          assert.deepEqual(module.getWorkerStatus(), { success: true, running: true, workerId: boot.workerId, status: 'running', environment: 'test' });
          const draining = module.transitionToGracefulShutdown();
          assert.deepEqual(draining, { success: true, running: true, workerId: boot.workerId, status: 'draining' });
          assert.deepEqual(module.stopWorker(), { success: true, running: false, workerId: boot.workerId, status: 'stopped' });
          assert.throws(() => module.pollStepEvents(), notInitialized);
          assert.throws(() => module.pollInProcessEvents(), notInitialized);
          await waitFor('the worker to end', () => !module.isWorkerRunning(), 30_000);
        } finally {
          dir.remove();
        }
      });
    } finally {
      module.stopWorker();
      module.close();
    }
  });

  it("the environment is TASKER_ENV, else tasker-core's `development`", async () => {
    await withStore(1, (url) =>
      withModule({ database_url: url }, async (module) => {
        assert.equal(module.getWorkerStatus().environment, process.env.TASKER_ENV || 'development');
      }),
    );
  });

  it("their poller's pattern on the store: every step completed exactly once, the right results, every event in the contract's shape", async () => {
    const tasks = 40;
    await withStore(tasks, (url) =>
      withModule({ database_url: url }, async (module) => {
        const completions = new Map<string, number>();
        const problems = new Set<string>();
        const refused: string[] = [];
        let answered = 0;
        let peak = 0;
        const busiest = await theirPoller(
          module,
          (event) => {
            for (const p of eventProblems(event)) problems.add(p);
            peak = Math.max(peak, module.getFfiDispatchMetrics().pendingCount);
            // Their subscriber answers asynchronously, after the handler's promise settles.
            void sleep(answered % 3).then(() => {
              if (module.completeStepEvent(event.eventId, linearResult(event))) completions.set(event.stepUuid, (completions.get(event.stepUuid) ?? 0) + 1);
              else refused.push(event.eventId);
              answered += 1;
            });
          },
          () => answered === tasks * 4,
        );
        assert.deepEqual([...problems], [], 'every event has the contract shape');
        assert.deepEqual(refused, [], 'every completion was taken');
        assert.equal(completions.size, tasks * 4, 'every step was handed out');
        assert.deepEqual([...new Set(completions.values())], [1], 'each step completed exactly once');
        assert.ok(busiest <= 100 && busiest >= 1, `one tick took ${busiest} events`);
        assert.ok(peak >= 1);
        await waitFor('the store to take every result', () => storeSteps(url).complete === tasks * 4, 60_000);
        const steps = storeSteps(url);
        assert.deepEqual({ total: steps.total, complete: steps.complete, error: steps.error }, { total: tasks * 4, complete: tasks * 4, error: 0 });
        const verify = verifyStore(url);
        assert.deepEqual({ checked: verify.checked, mismatches: verify.mismatches }, { checked: tasks, mismatches: 0 }, 'the results are the reference math');
        const metrics = module.getFfiDispatchMetrics();
        assert.equal(metrics.pendingCount, 0);
        assert.equal('oldestEventId' in metrics, false, 'nothing in flight: no oldest event');
      }),
    );
  });

  it('refusals: false for an event not in flight (never handed out, completed, timed out); throws for non-UUID ids', async () => {
    await withStore(2, (url) =>
      withModule({ database_url: url }, async (module) => {
        const event = await nextEvent(module);
        const result = linearResult(event);
        assert.throws(() => module.completeStepEvent('not-a-uuid', result), invalidArgument);
        assert.throws(() => module.completeStepEvent(event.eventId, { ...result, stepUuid: 'nope' }), invalidArgument);
        assert.throws(() => module.checkpointYieldStepEvent('x', { stepUuid: event.stepUuid, cursor: 1, itemsProcessed: 1 }), invalidArgument);
        assert.throws(() => module.checkpointYieldStepEvent(event.eventId, { stepUuid: '', cursor: 1, itemsProcessed: 1 }), invalidArgument);
        assert.equal(module.completeStepEvent(NEVER, result), false, 'never handed out');
        assert.equal(module.completeStepEvent(event.eventId.toUpperCase(), result), false, 'a UUID, in a form never handed out');
        assert.equal(module.checkpointYieldStepEvent(NEVER, { stepUuid: event.stepUuid, cursor: 1, itemsProcessed: 1 }), false);
        assert.equal(module.getFfiDispatchMetrics().pendingCount, 1, 'the refusals left the event in flight');
        assert.equal(module.completeStepEvent(event.eventId, result), true);
        assert.equal(module.completeStepEvent(event.eventId, result), false, 'already completed');
        assert.equal(module.checkpointYieldStepEvent(event.eventId, { stepUuid: event.stepUuid, cursor: 1, itemsProcessed: 1 }), false, 'already completed');
        assert.equal(module.getFfiDispatchMetrics().pendingCount, 0);
      }),
    );
    await withModule({ completion_timeout_ms: 300, source: { kind: 'synthetic', count: 1 } }, async (module) => {
      const event = await nextEvent(module);
      await sleep(450);
      assert.equal(module.completeStepEvent(event.eventId, linearResult(event)), false, 'timed out');
    });
  });

  it("results reach the store in tasker-core's serialisation: a failure without `retryable` is final, one with `retryable: true` is retried", async () => {
    await withStore(2, (url) =>
      withModule({ database_url: url }, async (module) => {
        const first = await nextEvent(module);
        const second = await nextEvent(module);
        const failure = (event: NapiStepEvent, error: NapiStepExecutionResult['error']): NapiStepExecutionResult => ({
          stepUuid: event.stepUuid,
          success: false,
          result: {},
          status: 'failed',
          metadata: { executionTimeMs: 3, completedAt: new Date().toISOString() },
          error,
        });
        assert.equal(module.completeStepEvent(first.eventId, failure(first, { message: 'boom', errorType: 'ValidationError' })), true);
        assert.equal(module.completeStepEvent(second.eventId, failure(second, { message: 'later', errorType: 'TimeoutError', retryable: true })), true);
        const again = await nextEvent(module, 'the retryable step offered again');
        assert.equal(again.stepUuid, second.stepUuid, 'only the retryable failure comes back');
        assert.equal(again.workflowStep.attempts, second.workflowStep.attempts + 1);
        assert.equal(module.completeStepEvent(again.eventId, linearResult(again)), true);
        await waitFor(
          'the failure and the success in the store',
          () => {
            const steps = storeSteps(url);
            return steps.error === 1 && steps.complete === 1;
          },
          30_000,
        );
      }),
    );
  });

  it('client calls: camelCase requests in snake_case, answers as NapiClientResult, never a throw', () => {
    const sent: unknown[] = [];
    const answering = (answer: string | null) => () => (json: string) => {
      sent.push(JSON.parse(json));
      return answer;
    };
    const request = {
      name: 'linear',
      namespace: 'default',
      version: '1.0.0',
      context: { even_number: 2 },
      initiator: 'me',
      sourceSystem: 'tests',
      reason: 'why',
      correlationId: NEVER,
    };
    const ok = clientCall(answering('{"success":true,"data":{"task_uuid":"t","steps":[]}}'), 'create_task', createTaskArgs(request));
    assert.deepEqual(ok, { success: true, data: { task_uuid: 't', steps: [] } }, 'data as the store answers it');
    assert.deepEqual(sent[0], {
      op: 'create_task',
      args: {
        name: 'linear',
        namespace: 'default',
        version: '1.0.0',
        context: { even_number: 2 },
        initiator: 'me',
        source_system: 'tests',
        reason: 'why',
        correlation_id: NEVER,
      },
    });
    assert.deepEqual(listTasksArgs({ namespace: 'x' }), { limit: 50, offset: 0, namespace: 'x', status: undefined }, "tasker-core's defaults");
    assert.deepEqual(clientCall(answering('{"success":false,"error":"no such task","recoverable":false}'), 'get_task', { task_uuid: 'x' }), {
      success: false,
      error: 'no such task',
      recoverable: false,
    });
    assert.deepEqual(clientCall(answering('{"success":false,"error":"store busy","recoverable":true}'), 'health', {}), {
      success: false,
      error: 'store busy',
      recoverable: true,
    });
    const failures = [
      clientCall(answering(null), 'health', {}),
      clientCall(answering('not json'), 'health', {}),
      clientCall(
        () => () => {
          throw new Error('closed');
        },
        'health',
        {},
      ),
      clientCall(
        () => {
          throw new Error('library not found');
        },
        'health',
        {},
      ),
    ];
    for (const failure of failures) {
      assert.equal(failure.success, false);
      assert.equal(typeof failure.error, 'string');
      assert.equal(failure.recoverable, false);
      assert.equal('data' in failure, false);
    }
  });

  it('metrics: pendingCount is the in-flight count, with the oldest event and the ages; starvation from the worker core', async () => {
    await withStore(3, (url) =>
      withModule({ database_url: url }, async (module) => {
        const events: NapiStepEvent[] = [];
        await waitFor('3 events', () => {
          const event = module.pollStepEvents();
          if (event !== null) events.push(event);
          return events.length === 3;
        });
        const [first, second, third] = events as [NapiStepEvent, NapiStepEvent, NapiStepEvent];
        let metrics = module.getFfiDispatchMetrics();
        assert.equal(metrics.pendingCount, 3);
        assert.equal(metrics.oldestEventId, first.eventId);
        assert.equal(metrics.starvationDetected, false);
        assert.equal(metrics.starvingEventCount, 0);
        assert.ok((metrics.oldestPendingAgeMs ?? -1) >= (metrics.newestPendingAgeMs ?? Number.POSITIVE_INFINITY));
        assert.ok((metrics.newestPendingAgeMs ?? -1) >= 0);
        assert.deepEqual(undefinedKeys(metrics), []);
        assert.equal(module.completeStepEvent(first.eventId, linearResult(first)), true);
        metrics = module.getFfiDispatchMetrics();
        assert.equal(metrics.pendingCount, 2);
        assert.equal(metrics.oldestEventId, second.eventId);
        for (const event of [second, third]) assert.equal(module.completeStepEvent(event.eventId, linearResult(event)), true);
        metrics = module.getFfiDispatchMetrics();
        assert.deepEqual(metrics, { pendingCount: 0, starvationDetected: false, starvingEventCount: 0 }, 'optional fields omitted when nothing is in flight');
        module.checkStarvationWarnings();
        module.cleanupTimeouts();
      }),
    );
  });

  it("moduleAdapter (the repository's benches): none before the library is loaded or after close(), else the adapter the module reads through", async () => {
    const module = createNapiModule();
    try {
      assert.equal(moduleAdapter(module), null);
      module.healthCheck(); // loads the library
      const adapter = moduleAdapter(module);
      assert.ok(adapter !== null);
      await withStore(1, async (url) => {
        const dir = tempDir('tasker-core-adapter');
        try {
          writeFileSync(`${dir.path}/worker.json`, JSON.stringify({ database_url: url, log_stderr: false, log_level: 'warn' }));
          module.bootstrapWorker({ namespace: 'default', configPath: `${dir.path}/worker.json` });
          const event = await nextEvent(module);
          assert.equal(moduleAdapter(module), adapter);
          assert.equal(adapter.inFlightCount(), 1, "the module's event is in flight on that adapter");
          assert.equal(adapter.inFlightRange()?.oldestId, event.eventId);
          assert.equal(module.completeStepEvent(event.eventId, linearResult(event)), true);
          assert.equal(adapter.inFlightCount(), 0);
        } finally {
          module.stopWorker();
          dir.remove();
        }
      });
    } finally {
      module.close();
    }
    assert.equal(moduleAdapter(module), null);
  });

  it('checkpoint yield: the store keeps it, the step comes back with workflowStep.checkpoint set and no attempt used', async () => {
    await withStore(1, (url) =>
      withModule({ database_url: url }, async (module) => {
        const first = await nextEvent(module);
        assert.equal('checkpoint' in first.workflowStep, false, 'no checkpoint yet: the key is omitted');
        const data = { stepUuid: first.stepUuid, cursor: { page: 2 }, itemsProcessed: 40, accumulatedResults: { sum: 7 } };
        assert.equal(module.checkpointYieldStepEvent(first.eventId, data), true);
        assert.equal(module.checkpointYieldStepEvent(first.eventId, data), false, 'no longer in flight');
        assert.equal(module.getFfiDispatchMetrics().pendingCount, 0);
        const again = await nextEvent(module, 'the step dispatched again');
        assert.equal(again.stepUuid, first.stepUuid);
        assert.notEqual(again.eventId, first.eventId);
        const checkpoint = again.workflowStep.checkpoint as Record<string, unknown>;
        assert.deepEqual(
          { cursor: checkpoint.cursor, items_processed: checkpoint.items_processed, accumulated_results: checkpoint.accumulated_results },
          { cursor: { page: 2 }, items_processed: 40, accumulated_results: { sum: 7 } },
          'the checkpoint as tasker-core handlers read it (snake_case inside, as theirs)',
        );
        assert.equal(again.workflowStep.attempts, first.workflowStep.attempts, 'the yield used no attempt');
        assert.deepEqual(eventProblems(again), []);
        assert.equal(module.completeStepEvent(again.eventId, linearResult(again)), true);
        await waitFor('the result in the store', () => storeSteps(url).complete === 1, 30_000);
        assert.equal(storeSteps(url).error, 0);
      }),
    );
  });

  it("synthetic events map to the contract's shape with every required field", async () => {
    await withModule({ source: { kind: 'synthetic', count: 3 } }, async (module) => {
      for (let i = 0; i < 3; i++) {
        const event = await nextEvent(module);
        assert.deepEqual(eventProblems(event), []);
        assert.equal(typeof event.traceId, 'string');
        assert.equal(typeof event.task.requestedAt, 'string');
        assert.equal(typeof event.dependencyResults.linear_step_1?.stepUuid, 'string');
        assert.equal(module.completeStepEvent(event.eventId, linearResult(event)), true);
      }
    });
  });

  it("examples/tasker-core-worker.ts: a worker in tasker-core's style runs on the module and the store", async () => {
    await withStore(25, async (url) => {
      const dir = tempDir('tasker-core-example');
      try {
        const configPath = `${dir.path}/worker.json`;
        writeFileSync(configPath, JSON.stringify({ database_url: url, log_stderr: false, log_level: 'warn' }));
        const module = createNapiModule();
        try {
          const run = await runTaskerCoreWorker(100, configPath, module);
          assert.deepEqual({ handled: run.handled, refused: run.refused }, { handled: 100, refused: 0 });
        } finally {
          module.close();
        }
        assert.deepEqual(verifyStore(url), { ...verifyStore(url), checked: 25, mismatches: 0 });
        assert.equal(storeSteps(url).complete, 100);
      } finally {
        dir.remove();
      }
    });
  });
});

// ---- the client calls and log* against the real library ------------------------------------------------------

type Row = Record<string, unknown>;

/** The data of a successful client call (fails the test with the call's error otherwise). */
function data<T = Row>(result: { success: boolean; data?: unknown; error?: string }, what: string): T {
  assert.equal(result.success, true, `${what}: ${result.error}`);
  return result.data as T;
}

/** A failed client call: never a throw, `recoverable` as given, an error matching `pattern`. */
function refused(result: { success: boolean; error?: string; recoverable?: boolean }, recoverable: boolean, pattern: RegExp): void {
  assert.equal(result.success, false, JSON.stringify(result));
  assert.equal(result.recoverable, recoverable, JSON.stringify(result));
  assert.match(result.error ?? '', pattern);
}

/**
 * The client tests' store: a fresh SQLite file, or the empty store `TASKER_TEST_CLIENT_DATABASE_URL` names
 * (tests-integration's e2e.rs runs this suite on a throwaway PostgreSQL cluster that way, one per runtime).
 */
async function withClientStore(body: (url: string, backend: string) => Promise<void>): Promise<void> {
  const url = process.env.TASKER_TEST_CLIENT_DATABASE_URL;
  if (url === undefined || url === '') return withStore(0, (sqlite) => body(sqlite, 'sqlite'));
  enqueue(url, 0); // creates the schema when missing
  return body(url, url.startsWith('postgres') ? 'postgres' : 'sqlite');
}

describe('tasker-core module: client calls and log* on the step store (client_call, log_message)', () => {
  after(stopStrayWorker);

  const request = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    namespace: 'default',
    version: '1.0.0',
    context: { even_number: 6 },
    initiator: 'tasker-core-test',
    sourceSystem: 'tests',
    reason: 'client calls',
    ...extra,
  });

  it('create, get, list, run, steps, audit history, cancel and health through the module, as tasker-core calls them', async () => {
    await withClientStore(async (url, backend) => {
      await withModule({ database_url: url }, async (module) => {
        const health = data<{ healthy: boolean; backend: string; schema_version: number }>(module.clientHealthCheck(), 'health');
        assert.deepEqual([health.healthy, health.backend], [true, backend]);

        const task = data<{ task_uuid: string; step_count: number; status: string }>(
          module.clientCreateTask(request('linear_workflow', { idempotencyKey: 'order-17', tags: ['a'], priority: 3 })),
          'create_task',
        );
        assert.equal(task.step_count, 4);
        const again = data<{ task_uuid: string }>(module.clientCreateTask(request('linear_workflow', { idempotencyKey: 'order-17' })), 'create_task again');
        assert.equal(again.task_uuid, task.task_uuid, 'a repeated idempotency key creates nothing and returns the first task');
        const got = data<Row>(module.clientGetTask(task.task_uuid), 'get_task');
        assert.deepEqual([got.initiator, got.source_system, got.idempotency_key, got.tags, got.priority], ['tasker-core-test', 'tests', 'order-17', ['a'], 3]);
        const listed = data<{ tasks: Row[]; total_count: number; has_more: boolean }>(module.clientListTasks({ limit: 10 }), 'list_tasks');
        assert.deepEqual([listed.total_count, listed.tasks.length, listed.has_more], [1, 1, false]);

        // The worker runs the task's four steps; the client sees them complete, each with one succeeded attempt.
        for (let done = 0; done < 4; done++) {
          const event = await nextEvent(module, `step ${done + 1} of the client's task`);
          assert.equal(event.taskUuid, task.task_uuid);
          assert.equal(module.completeStepEvent(event.eventId, linearResult(event)), true);
        }
        await waitFor('the task complete', () => (data<Row>(module.clientGetTask(task.task_uuid), 'get_task').status as string) === 'complete');
        const steps = data<Array<{ step_uuid: string; name: string; state: string; attempts: number }>>(
          module.clientListTaskSteps(task.task_uuid),
          'list_task_steps',
        );
        assert.deepEqual(
          steps.map((s) => [s.name, s.state, s.attempts]),
          [1, 2, 3, 4].map((n) => [`linear_step_${n}`, 'complete', 1]),
        );
        const last = steps[3] as { step_uuid: string };
        const step = data<{ results: { result: { value: number } } }>(module.clientGetStep(task.task_uuid, last.step_uuid), 'get_step');
        assert.equal(step.results.result.value, 6 ** 16, "the final step's result, as the handler sent it");
        const history = data<Array<{ attempt: number; outcome: string }>>(
          module.clientGetStepAuditHistory(task.task_uuid, last.step_uuid),
          'step_audit_history',
        );
        assert.deepEqual(
          history.map((h) => [h.attempt, h.outcome]),
          [[1, 'succeeded']],
        );
        assert.equal(data<{ total_count: number }>(module.clientListTasks({ status: 'complete' }), 'list complete').total_count, 1);

        // Cancel: the steps not yet running never run; a running one (claimed into the ring) finishes.
        const second = data<{ task_uuid: string }>(module.clientCreateTask(request('diamond_workflow')), 'create a diamond task');
        const cancel = data<{ steps_cancelled: number; still_running: number; task: Row }>(module.clientCancelTask(second.task_uuid), 'cancel_task');
        assert.equal(cancel.steps_cancelled + cancel.still_running, 4, JSON.stringify(cancel));
        for (let i = 0; i < cancel.still_running; i++) {
          const event = await nextEvent(module, 'the step running at the cancel');
          module.completeStepEvent(event.eventId, linearResult(event));
        }
        await waitFor('the task cancelled', () => (data<Row>(module.clientGetTask(second.task_uuid), 'get_task').status as string) === 'cancelled');
        assert.equal(data<{ total_count: number }>(module.clientListTasks({ status: 'cancelled' }), 'list cancelled').total_count, 1);

        // Failures are answers, never throws.
        refused(module.clientGetTask(NEVER), false, /task/);
        refused(module.clientCreateTask(request('no_such_workflow')), false, /linear_workflow/);
        refused(module.clientGetStep(task.task_uuid, 'not-a-uuid'), false, /uuid/i);
        refused(module.clientCancelTask(task.task_uuid), false, /complete/);
      });
    });
  });

  it("templates_path: a template file in tasker-core's format is registered at bootstrap and its tasks carry its step definition", async () => {
    await withClientStore(async (url) => {
      const dir = tempDir('tasker-core-templates');
      try {
        writeFileSync(
          `${dir.path}/refund.yaml`,
          'name: refund\nnamespace_name: default\nversion: 2.0.0\nsteps:\n' +
            '  - name: validate\n    handler:\n      callable: Payments.Validate\n      initialization:\n        limit: 100\n' +
            '  - name: pay\n    handler:\n      callable: Payments.Pay\n    dependencies: [validate]\n',
        );
        await withModule({ database_url: url, templates_path: dir.path }, async (module) => {
          const task = data<{ task_uuid: string; step_count: number }>(module.clientCreateTask({ ...request('refund'), version: '2.0.0' }), 'create_task');
          assert.equal(task.step_count, 2);
          const event = await nextEvent(module, "the template's first step");
          assert.equal(event.taskUuid, task.task_uuid);
          assert.equal(event.stepDefinition.handlerCallable, 'Payments.Validate');
          assert.deepEqual(event.stepDefinition.handlerInitialization, { limit: 100 });
          assert.equal(
            module.completeStepEvent(event.eventId, {
              stepUuid: event.stepUuid,
              success: true,
              result: { ok: true },
              status: 'completed',
              metadata: { executionTimeMs: 1, completedAt: new Date().toISOString() },
            }),
            true,
          );
        });
      } finally {
        dir.remove();
      }
    });
  });

  it("log* reach the worker core's tracing with their fields (the records pollWorkerLogs returns)", async () => {
    // The level filter is the first bootstrap's in the process (Bun runs every test file in one): only error
    // passes whichever came first, and no test asks for trace.
    await withModule({ source: { kind: 'synthetic', count: 0 } }, async (module) => {
      const logs = openAdapter();
      try {
        logs.pollWorkerLogs(); // the bootstrap's own records
        module.logError('order failed', { order_id: 17, user: { id: 'u1' } });
        module.logError('no fields');
        module.logTrace('below the level');
        const records = logs.pollWorkerLogs().filter((r) => r.target === 'js');
        assert.deepEqual(
          records.map((r) => [r.level, r.message, r.fields]),
          [
            ['error', 'order failed', { order_id: 17, user: { id: 'u1' } }],
            ['error', 'no fields', {}],
          ],
        );
      } finally {
        logs.close();
      }
    });
  });
});

// ---- pollInProcessEvents: the worker core's domain events ---------------------------------------------------------

const DOMAIN_EVENT: Shape = { eventId: 'string', eventName: 'string', eventVersion: 'string', metadata: 'object', payload: 'any' };
const DOMAIN_METADATA: Shape = {
  taskUuid: 'string',
  stepUuid: 'string?',
  stepName: 'string?',
  namespace: 'string',
  correlationId: 'string',
  firedAt: 'string',
  firedBy: 'string?',
};

/**
 * tasker-core's `InProcessDomainEventPoller`: every 10 ms, up to 100 `pollInProcessEvents()` until one returns
 * null, each event to `onEvent`. Runs until `done()` is true.
 */
function theirEventPoller(module: TaskerCoreModule, onEvent: (event: NapiDomainEvent) => void, done: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        for (let i = 0; i < 100; i++) {
          const event = module.pollInProcessEvents();
          if (event === null) break;
          onEvent(event);
        }
        if (done()) {
          clearInterval(timer);
          resolve();
        } else if (Date.now() > deadline) throw new Error('timed out');
      } catch (error) {
        clearInterval(timer);
        reject(error);
      }
    }, 10);
  });
}

describe("tasker-core module: pollInProcessEvents (the library's poll_domain_events)", () => {
  after(stopStrayWorker);

  const record = (eventId: string) => ({
    eventId,
    eventName: 'step.completed',
    eventVersion: '1.0',
    metadata: { taskUuid: NEVER, namespace: 'n', correlationId: 'c', firedAt: '' },
    payload: {},
  });

  it('one event per call from a queue refilled only when empty, by one read of the library at most every 100 ms', () => {
    let clock = 1_000;
    const drains: number[] = [];
    const batches = [[record('a'), record('b')], [], [record('c')]];
    const feed = new DomainEventFeed(
      () => {
        drains.push(clock);
        return { events: batches.shift() ?? [], dropped: 0 };
      },
      () => clock,
    );
    assert.deepEqual([feed.poll()?.eventId, feed.poll()?.eventId], ['a', 'b']);
    for (let i = 0; i < 1000; i++) assert.equal(feed.poll(), null);
    assert.deepEqual(drains, [1_000], 'one read for the first poll; none for polls within 100 ms of it');
    clock += 99;
    assert.equal(feed.poll(), null);
    clock += 1;
    assert.equal(feed.poll(), null, 'the library had nothing');
    clock += 100;
    assert.equal(feed.poll()?.eventId, 'c');
    assert.deepEqual(drains, [1_000, 1_100, 1_200]);
    assert.equal(new DomainEventFeed(() => null).poll(), null, 'a library without poll_domain_events');
  });

  it('their two pollers on the store: step completed, retry requested, failed and task completed, in their shape', async () => {
    await withStore(0, (url) =>
      withModule({ database_url: url }, async (module) => {
        assert.equal(module.pollInProcessEvents(), null, 'the first call subscribes');
        const workerId = module.getWorkerStatus().workerId;
        const create = (correlationId: string) =>
          data<{ task_uuid: string }>(
            module.clientCreateTask({
              name: 'linear_workflow',
              namespace: 'events',
              version: '1.0.0',
              context: { even_number: 2 },
              initiator: 'tasker-core-test',
              sourceSystem: 'tests',
              reason: 'domain events',
              correlationId,
            }),
            'create_task',
          ).task_uuid;
        const [okCorrelation, failCorrelation] = ['0190f3a2-7c1e-7b3a-9d2e-0000000000a1', '0190f3a2-7c1e-7b3a-9d2e-0000000000a2'];
        const okTask = create(okCorrelation);
        const failTask = create(failCorrelation);
        const failed = (event: NapiStepEvent, retryable: boolean): NapiStepExecutionResult => ({
          stepUuid: event.stepUuid,
          success: false,
          result: {},
          status: 'failed',
          metadata: { executionTimeMs: 2, completedAt: new Date().toISOString() },
          error: { message: retryable ? 'try again' : 'never', errorType: 'HandlerError', retryable },
        });
        const byTask = new Map<string, NapiDomainEvent[]>();
        const problems = new Set<string>();
        const names = (task: string) => (byTask.get(task) ?? []).map((e) => e.eventName);
        let answered = false;
        const events = theirEventPoller(
          module,
          (event) => {
            for (const p of shapeProblems(event as unknown as Record<string, unknown>, DOMAIN_EVENT, '')) problems.add(p);
            for (const p of shapeProblems(event.metadata as unknown as Record<string, unknown>, DOMAIN_METADATA, 'metadata.')) problems.add(p);
            for (const p of undefinedKeys(event)) problems.add(`${p}: undefined`);
            const list = byTask.get(event.metadata.taskUuid) ?? [];
            list.push(event);
            byTask.set(event.metadata.taskUuid, list);
          },
          () => answered && names(okTask).includes('task.completed') && names(failTask).includes('step.failed'),
        );
        // The first task's steps succeed, but for the first attempt of its last step (a retryable failure); the
        // second task's first step fails for good.
        const retried = new Set<string>();
        await theirPoller(
          module,
          (event) => {
            let result = linearResult(event);
            if (event.taskUuid === failTask) result = failed(event, false);
            else if (event.workflowStep.name === 'linear_step_4' && !retried.has(event.stepUuid)) {
              retried.add(event.stepUuid);
              result = failed(event, true);
            }
            assert.equal(module.completeStepEvent(event.eventId, result), true);
          },
          () => names(okTask).includes('task.completed') && names(failTask).includes('step.failed'),
        );
        answered = true;
        await events;
        assert.deepEqual([...problems], [], "every event has the contract's shape");
        assert.deepEqual(names(okTask), ['step.completed', 'step.completed', 'step.completed', 'step.retry_requested', 'step.completed', 'task.completed']);
        assert.deepEqual(names(failTask), ['step.failed']);
        const ok = byTask.get(okTask) ?? [];
        const all = [...ok, ...(byTask.get(failTask) ?? [])];
        assert.equal(new Set(all.map((e) => e.eventId)).size, all.length, 'unique event ids');
        for (const e of all) {
          assert.equal(e.eventVersion, '1.0');
          assert.equal(e.metadata.namespace, 'events');
          assert.equal(e.metadata.firedBy, workerId);
          assert.ok(!Number.isNaN(Date.parse(e.metadata.firedAt)), e.metadata.firedAt);
        }
        assert.deepEqual(
          all.map((e) => e.metadata.correlationId),
          [...ok.map(() => okCorrelation), failCorrelation],
        );
        assert.deepEqual(
          ok.map((e) => e.metadata.stepName),
          ['linear_step_1', 'linear_step_2', 'linear_step_3', 'linear_step_4', 'linear_step_4', undefined],
        );
        const steps = data<Array<{ step_uuid: string }>>(module.clientListTaskSteps(okTask), 'list_task_steps');
        assert.deepEqual(
          ok.slice(0, 5).map((e) => e.metadata.stepUuid),
          [0, 1, 2, 3, 3].map((i) => steps[i]?.step_uuid),
        );
        const payloads = ok.map((e) => e.payload as { execution_result?: { result?: { value?: number } }; attempts?: number; backoff_ms?: number });
        assert.deepEqual(
          payloads.map((p) => [p.execution_result?.result?.value, p.attempts, p.backoff_ms]),
          [
            [4, 1, undefined],
            [16, 1, undefined],
            [256, 1, undefined],
            [undefined, 1, 1000],
            [65536, 2, undefined],
            [undefined, undefined, undefined],
          ],
          'the results as persisted, the attempts, the retry backoff',
        );
        assert.equal('stepUuid' in (ok[5]?.metadata ?? {}), false, 'a task event has no step fields');
        assert.equal(module.pollInProcessEvents(), null, 'each event once');
      }),
    );
  });
});
