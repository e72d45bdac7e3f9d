/**
 * tasker-core's native module contract (`NapiModule`, tasker-core `crates/tasker-ts/src/ffi/ffi-layer.ts`),
 * declared here from its published shapes: camelCase names as napi-rs makes them, and every `?` field
 * OMITTED when absent (napi-rs turns a Rust `None` into a missing property, never `undefined`).
 */
import type { DomainEventMetadata, DomainEventRecord } from '../protocol.ts';

export interface BootstrapConfig {
  namespace?: string;
  /** A JSON file of this package's bootstrap keys (`database_url`, `transport`, timeouts, ...). */
  configPath?: string;
}

export interface BootstrapResult {
  success: boolean;
  status: string;
  message: string;
  workerId?: string;
}

export interface WorkerStatus {
  success: boolean;
  running: boolean;
  workerId?: string;
  status?: string;
  environment?: string;
}

export interface NapiTaskInfo {
  taskUuid: string;
  namedTaskUuid: string;
  name: string;
  namespace: string;
  version: string;
  context?: unknown;
  correlationId: string;
  parentCorrelationId?: string;
  complete: boolean;
  priority: number;
  initiator?: string;
  sourceSystem?: string;
  reason?: string;
  tags?: unknown;
  identityHash: string;
  createdAt: string;
  updatedAt: string;
  requestedAt: string;
}

export interface NapiWorkflowStep {
  workflowStepUuid: string;
  taskUuid: string;
  namedStepUuid: string;
  name: string;
  templateStepName: string;
  retryable: boolean;
  maxAttempts: number;
  attempts: number;
  inProcess: boolean;
  processed: boolean;
  inputs?: unknown;
  results?: unknown;
  backoffRequestSeconds?: number;
  processedAt?: string;
  lastAttemptedAt?: string;
  createdAt: string;
  updatedAt: string;
  checkpoint?: unknown;
}

export interface NapiStepDefinition {
  name: string;
  description?: string;
  handlerCallable: string;
  handlerMethod?: string;
  handlerResolver?: string;
  handlerInitialization: unknown;
  systemDependency?: string;
  dependencies: string[];
  timeoutSeconds?: number;
  retryRetryable: boolean;
  retryMaxAttempts: number;
  retryBackoff: string;
  retryBackoffBaseMs?: number;
  retryMaxBackoffMs?: number;
}

export interface NapiDependencyResult {
  stepUuid: string;
  success: boolean;
  result: unknown;
  status: string;
  errorMessage?: string;
  errorType?: string;
  errorRetryable?: boolean;
}

export interface NapiStepEvent {
  eventId: string;
  taskUuid: string;
  stepUuid: string;
  correlationId: string;
  traceId?: string;
  spanId?: string;
  taskCorrelationId: string;
  parentCorrelationId?: string;
  task: NapiTaskInfo;
  workflowStep: NapiWorkflowStep;
  stepDefinition: NapiStepDefinition;
  dependencyResults: Record<string, NapiDependencyResult>;
}

export interface NapiStepExecutionMetadata {
  executionTimeMs: number;
  workerId?: string;
  completedAt: string;
  retryable?: boolean;
  errorType?: string;
  errorCode?: string;
  custom?: unknown;
}

export interface NapiStepExecutionError {
  message: string;
  errorType?: string;
  retryable?: boolean;
  statusCode?: number;
  backtrace?: unknown;
  context?: unknown;
}

export interface NapiStepExecutionResult {
  stepUuid: string;
  success: boolean;
  result: unknown;
  status: string;
  metadata: NapiStepExecutionMetadata;
  error?: NapiStepExecutionError;
  orchestrationMetadata?: unknown;
}

export interface NapiDispatchMetrics {
  pendingCount: number;
  starvationDetected: boolean;
  starvingEventCount: number;
  oldestPendingAgeMs?: number;
  newestPendingAgeMs?: number;
  oldestEventId?: string;
}

export interface NapiCheckpointYieldData {
  stepUuid: string;
  cursor: unknown;
  itemsProcessed: number;
  accumulatedResults?: unknown;
}

/** Their domain event: the library writes this shape (`poll_domain_events`), declared once in `protocol.ts`. */
export type NapiDomainEvent = DomainEventRecord;

export type NapiDomainEventMetadata = DomainEventMetadata;

export interface NapiClientResult {
  success: boolean;
  data?: unknown;
  error?: string;
  recoverable?: boolean;
}

export interface NapiTaskRequest {
  name: string;
  namespace: string;
  version: string;
  context: unknown;
  initiator: string;
  sourceSystem: string;
  reason: string;
  tags?: string[];
  priority?: number;
  correlationId?: string;
  parentCorrelationId?: string;
  idempotencyKey?: string;
}

export interface NapiListTasksParams {
  limit?: number;
  offset?: number;
  namespace?: string;
  status?: string;
}

/** tasker-core's `NapiModule`: every function their worker, poller, subscriber and client call. All synchronous. */
export interface NapiModule {
  getVersion(): string;
  getRustVersion(): string;
  healthCheck(): boolean;
  bootstrapWorker(config: BootstrapConfig): BootstrapResult;
  isWorkerRunning(): boolean;
  getWorkerStatus(): WorkerStatus;
  stopWorker(): WorkerStatus;
  transitionToGracefulShutdown(): WorkerStatus;

  pollStepEvents(): NapiStepEvent | null;
  completeStepEvent(eventId: string, result: NapiStepExecutionResult): boolean;
  pollInProcessEvents(): NapiDomainEvent | null;
  checkpointYieldStepEvent(eventId: string, checkpoint: NapiCheckpointYieldData): boolean;

  getFfiDispatchMetrics(): NapiDispatchMetrics;
  checkStarvationWarnings(): void;
  cleanupTimeouts(): void;

  clientCreateTask(request: NapiTaskRequest): NapiClientResult;
  clientGetTask(taskUuid: string): NapiClientResult;
  clientListTasks(params: NapiListTasksParams): NapiClientResult;
  clientCancelTask(taskUuid: string): NapiClientResult;
  clientListTaskSteps(taskUuid: string): NapiClientResult;
  clientGetStep(taskUuid: string, stepUuid: string): NapiClientResult;
  clientGetStepAuditHistory(taskUuid: string, stepUuid: string): NapiClientResult;
  clientHealthCheck(): NapiClientResult;

  logError(message: string, fields?: Record<string, unknown>): void;
  logWarn(message: string, fields?: Record<string, unknown>): void;
  logInfo(message: string, fields?: Record<string, unknown>): void;
  logDebug(message: string, fields?: Record<string, unknown>): void;
  logTrace(message: string, fields?: Record<string, unknown>): void;
}
