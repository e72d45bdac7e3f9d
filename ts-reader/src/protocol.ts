/**
 * Types at the FFI boundary: the seed's (TAS-101) names and fields, widened where the Rust worker sends
 * more (tasker-core's extra fields arrive too and are kept: readers ignore what they do not know).
 */

/** A step event (poll_step_events / the events ring). */
export interface FfiStepEvent {
  event_id: string;
  task_uuid: string;
  step_uuid: string;
  correlation_id?: string;
  task_sequence_step: TaskSequenceStep;
  [extra: string]: unknown;
}

/** Task sequence step data (matches Rust TaskSequenceStep). */
export interface TaskSequenceStep {
  task: Task;
  workflow_step: WorkflowStep;
  dependency_results: DependencyResults;
  step_definition: StepDefinition;
  [extra: string]: unknown;
}

/** Task metadata. */
export interface Task {
  task_uuid: string;
  context: Record<string, unknown>;
  namespace_name: string;
  template_name: string;
  status: string;
  [extra: string]: unknown;
}

/** Workflow step execution state. */
export interface WorkflowStep {
  workflow_step_uuid: string;
  name: string;
  inputs: Record<string, unknown>;
  results: Record<string, unknown> | null;
  state: string;
  attempts: number;
  max_attempts: number;
  retryable: boolean;
  [extra: string]: unknown;
}

/** Dependency results from parent steps. */
export interface DependencyResults {
  results: Record<string, unknown>;
  [extra: string]: unknown;
}

/** Step definition from the template. */
export interface StepDefinition {
  name: string;
  handler: HandlerConfig | null;
  dependencies: string[];
  [extra: string]: unknown;
}

/** Handler configuration from the template (`handler_class`; tasker-core's `callable` is accepted too). */
export interface HandlerConfig {
  handler_class: string;
  callable?: string;
  initialization?: Record<string, unknown>;
  [extra: string]: unknown;
}

/** Which way step events reach JS. */
export type Transport = 'ring' | 'ffi';

/** The worker core's log levels. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Bootstrap configuration: the seed's two fields plus the worker core's, all optional. The type is exact
 * (no index signature), so a misspelt key in an object literal fails `tsc`; the library refuses unknown keys
 * too, naming the closest existing one. Step events come from the step store unless `source` asks for the
 * synthetic source.
 */
export interface BootstrapConfig {
  namespace?: string;
  log_level?: LogLevel;
  /** `ring` (default): events read from shared memory; `ffi`: the seed's per-poll call. */
  transport?: Transport;
  /** Print the worker core's logs on stderr too (default true; a worker that forwards logs passes false). */
  log_stderr?: boolean;
  region_dir?: string;
  events_capacity?: number;
  completions_capacity?: number;
  max_frame_size?: number;
  max_message_size?: number;
  ffi_queue_capacity?: number;
  completion_timeout_ms?: number;
  starvation_threshold_ms?: number;
  shutdown_timeout_ms?: number;
  /**
   * The step store's URL (`sqlite:PATH`, a file path, or `postgres://...`). It wins over
   * `source.database_url`; without either, `TASKER_DATABASE_URL`, else `./tasker.db`. Refused with the
   * synthetic source.
   */
  database_url?: string;
  /**
   * Task templates to register before the worker claims: a `.json` / `.yaml` / `.yml` file in tasker-core's
   * task-template format, or a directory of them (else a non-empty `TASKER_TEMPLATE_PATH`). A template that
   * does not load fails the bootstrap, naming the file.
   */
  templates_path?: string;
  /** Where step events come from (default: the step store). */
  source?: SyntheticSourceConfig | StoreSourceConfig;
}

/**
 * Tasker-shaped events made by the worker core itself, without a database (tests, benchmarks). Only when
 * asked for: the bootstrap logs at `warn` that the events are synthetic.
 */
export interface SyntheticSourceConfig {
  kind: 'synthetic';
  count?: number;
  rate_per_sec?: number;
  event_bytes?: number;
  event_bytes_max?: number;
  /**
   * Adds a top-level `enqueued_at_us` number to each event: epoch microseconds (system clock) of the moment
   * it became available (its due time under `rate_per_sec`, else the source's start), for measuring
   * enqueue-to-handler latency (default false).
   */
  stamp_enqueued_at?: boolean;
}

/** Ready steps of the step store: SQLite (embedded default) or PostgreSQL (many workers share the work). */
export interface StoreSourceConfig {
  kind: 'store';
  /**
   * `sqlite:path`, a file path, or `postgres://...` (a top-level `database_url` wins over this; without
   * either: `TASKER_DATABASE_URL`, else `./tasker.db`).
   */
  database_url?: string;
  /** A claim's deadline is `completion_timeout_ms` plus this (default 10 000). */
  visibility_margin_ms?: number;
  /** How long bootstrap keeps trying to reach the store (default 10 000). */
  connect_timeout_ms?: number;
  /** How often `metrics.source.steps` is refreshed (default 1000; 0: never). */
  status_interval_ms?: number;
}

/** The `source` section of the metrics when the worker is fed by the step store. */
export interface StoreSourceMetrics {
  backend: 'sqlite' | 'postgres';
  /** The store URL, password redacted. */
  database: string;
  claimed: number;
  completed: number;
  retried: number;
  failed: number;
  /** Results refused because the claim had expired and moved on to another worker. */
  refused: number;
  invalid: number;
  released: number;
  held: number;
  buffered: number;
  store_errors: number;
  last_error: string | null;
  /** Claim to persisted result. */
  latency: { count: number; p50_ms: number; p99_ms: number; max_ms: number };
  /** Time the store thread spent waiting on each kind of database call, and the number of calls. A claim and a
   * write may be in flight at once: `in_flight_ms` is the wall time with at least one call out. */
  time: {
    claims: number;
    claim_ms: number;
    empty_claims: number;
    empty_claim_ms: number;
    completes: number;
    complete_ms: number;
    extends: number;
    extend_ms: number;
    status_ms: number;
    /** Step-count refreshes not made: nothing had committed since the last (SQLite). */
    status_skipped?: number;
    in_flight_ms: number;
  };
  /** Step counts of the whole store (every worker's). */
  steps: { pending: number; ready: number; claimed: number; complete: number; error: number; age_ms: number } | null;
  /**
   * How the idle worker learns of new work: `listen` (PostgreSQL's LISTEN), `wal_watch` (an inotify watch on
   * SQLite's WAL file, Linux), `poll` (every 50 ms at most). Absent from libraries before it.
   */
  idle_wait?: 'listen' | 'wal_watch' | 'poll';
  /** Idle claims not made because SQLite's WAL index showed no commit since the last one. */
  idle_looks?: number;
  /** Claims started because SQLite's WAL file was written while the worker was idle. */
  wal_wakes?: number;
}

/** Bootstrap result. */
export interface BootstrapResult {
  status: 'started' | 'already_running';
  handle_id: string;
  worker_id: string;
  message?: string;
  transport?: Transport;
  region_path?: string | null;
  doorbell_path?: string | null;
  layout_major?: number;
  layout_minor?: number;
  /**
   * The largest step event the events ring carries (ring transport; null on ffi): a larger one fails as a
   * `dispatch_error`. Absent from libraries before it.
   */
  max_event_bytes?: number | null;
}

/** Worker status. */
export interface WorkerStatus {
  running: boolean;
  worker_id?: string;
  database_pool_size?: number;
  database_pool_available?: number;
  worker_core_status?: string;
  transport?: Transport;
  region_path?: string | null;
  doorbell_path?: string | null;
  namespace?: string;
  /** Why the worker core stopped on its own (a pump panic, a corrupt completions ring, a truncated region). */
  error?: WorkerFault;
  /** The largest step event the events ring carries (ring transport; absent on ffi and from older libraries). */
  max_event_bytes?: number;
  /**
   * True while a stopped worker still closes its source in the background (`stop_worker` returns within a
   * second; a step store persisting buffered results and releasing held claims, at most about 10 s more).
   * Meanwhile `isWorkerRunning()` stays true and the library stays loaded. Absent otherwise, and from older
   * libraries.
   */
  closing?: boolean;
}

/** The worker core stopped on its own: nothing moves any more. */
export interface WorkerFault {
  /** The phase it was in. */
  phase: 'running' | 'draining' | 'stopped';
  /** What happened, one line. */
  reason: string;
}

/** Why a completion was refused after it was sent (`RefusalEvent.kind`). */
export type RefusalKind =
  /** Never delivered, already completed, or timed out. */
  | 'not_in_flight'
  /** Not a step result (`step_uuid`, `success`); the event stays in flight in the worker core. */
  | 'invalid_result'
  | 'invalid_event_id'
  /** The worker core had stopped. */
  | 'stopped'
  /** The step store's claim had expired and the step moved on to another worker. */
  | 'claim_lost'
  /** The step store refused the result as invalid for the step. */
  | 'store_invalid';

/** A completion the worker core (or its step store) refused after `completeStepEvent` had returned true. */
export interface CompletionRefusal {
  event_id: string;
  kind: RefusalKind;
  message: string;
  at_unix_ms: number;
}

/** What one read of the worker core's refusals returns. */
export interface RefusalBatch {
  /** Oldest first. */
  refusals: CompletionRefusal[];
  /** Refusals dropped because more than 1024 piled up between two reads. */
  dropped: number;
}

/** Dispatch metrics (the seed's six fields, then the worker core's). */
export interface FfiDispatchMetrics {
  /** In the ring (or queue), not yet read. */
  pending_count: number;
  /** Read, not completed. */
  in_flight_count: number;
  completed_count: number;
  failed_count: number;
  starvation_detected: boolean;
  starving_event_count: number;
  oldest_in_flight_age_ms?: number;
  refused_completions?: number;
  timed_out_count?: number;
  /** Events never read, given back to the source at the end of a graceful shutdown. */
  released_count?: number;
  events_ring_fill?: number;
  completions_ring_fill?: number;
  /** The event source's figures (present when the worker is fed by the step store). */
  source?: StoreSourceMetrics;
  /** Read from the region header by this package (ring transport only), no FFI call. */
  ring?: RingMetrics;
  /** Why the worker core stopped on its own, if it did. */
  worker_error?: WorkerFault;
}

/** Ring statistics read from the header (layout-spec.md section 4). */
export interface RingMetrics {
  events_pending_bytes: number;
  events_capacity: number;
  events_published_frames: number;
  events_consumed_frames: number;
  consumer_sleeps: number;
  doorbells: number;
  completions_pending_bytes: number;
  completions_capacity: number;
  /** Completions waiting in JS memory for room in the completions ring. */
  completions_queued: number;
  full_stalls: number;
  producer_heartbeat_age_ms: number;
}

/**
 * A step's checkpoint (the CHECKPOINT record of layout 1.1, `checkpoint_yield_step_event` on ffi), snake_case
 * as the store keeps it: the step yields, its attempt is not counted, and it is dispatched again with
 * `workflow_step.checkpoint` set to this object.
 */
export interface StepCheckpoint {
  step_uuid: string;
  cursor: unknown;
  items_processed: number;
  accumulated_results?: unknown;
  [extra: string]: unknown;
}

/** tasker-core's `StepExecutionResult`, the completion payload. */
export interface StepExecutionResult {
  step_uuid: string;
  success: boolean;
  result: Record<string, unknown> | unknown;
  status: 'completed' | 'error' | string;
  metadata?: Record<string, unknown>;
  error?: StepExecutionError | null;
  [extra: string]: unknown;
}

export interface StepExecutionError {
  message: string;
  error_type: string;
  retryable: boolean;
  backtrace?: string[];
  status_code?: number | null;
  [extra: string]: unknown;
}

/**
 * A domain event of the worker core (`poll_domain_events`), in tasker-core's `NapiDomainEvent` shape as the
 * library writes it: `step.completed`, `step.retry_requested`, `step.failed`, `task.completed`.
 */
export interface DomainEventRecord {
  eventId: string;
  eventName: string;
  eventVersion: string;
  metadata: DomainEventMetadata;
  /** Step events: `{execution_result, attempts, backoff_ms?}`; task events: `{}`. */
  payload: unknown;
}

/** A domain event's `metadata`. */
export interface DomainEventMetadata {
  taskUuid: string;
  /** Absent from task events. */
  stepUuid?: string;
  /** Absent from task events. */
  stepName?: string;
  namespace: string;
  correlationId: string;
  /** ISO 8601 UTC. */
  firedAt: string;
  /** The worker id. */
  firedBy?: string;
}

/** What one read of the worker core's domain events returns. */
export interface DomainEventBatch {
  /** Oldest first. */
  events: DomainEventRecord[];
  /** Events dropped (the library's log of 4096 was full) since the previous read. */
  dropped: number;
}

/** A log record of the Rust worker core (poll_worker_logs). */
export interface WorkerLogRecord {
  ts_unix_ms: number;
  level: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  target: string;
  message: string;
  fields: Record<string, unknown>;
}
