/** libtasker_worker through koffi 3.x (Node). Loaded lazily: koffi is imported only by this module's function. */
import type * as Koffi from 'koffi';
import { FfiLibraryError } from './errors.ts';
import { loadModule } from './load-module.ts';
import type { JsonReturningSymbol, NativeLibrary, RegionMapping } from './native.ts';

type Fn = ReturnType<Koffi.LibraryHandle['func']>;

export function openKoffiLibrary(path: string): NativeLibrary {
  const koffi = loadModule<typeof Koffi>('koffi', 'the Node FFI adapter needs koffi 3.x: npm install koffi');
  const lib = koffi.load(path);
  const bind = (decl: string): Fn => {
    try {
      return lib.func(decl);
    } catch (error) {
      lib.unload();
      throw new FfiLibraryError(`${path} does not export '${decl}': ${(error as Error).message}`, error, 'ABI_MISMATCH');
    }
  };
  const optional = (decl: string): Fn | null => {
    try {
      return lib.func(decl);
    } catch {
      return null;
    }
  };
  const free = bind('void free_rust_string(void *p)');
  const json: Record<JsonReturningSymbol, Fn | null> = {
    get_worker_status: bind('void *get_worker_status(void)'),
    stop_worker: bind('void *stop_worker(void)'),
    transition_to_graceful_shutdown: bind('void *transition_to_graceful_shutdown(void)'),
    get_ffi_dispatch_metrics: bind('void *get_ffi_dispatch_metrics(void)'),
    poll_step_events: bind('void *poll_step_events(void)'),
    poll_worker_logs: optional('void *poll_worker_logs(void)'),
    poll_completion_refusals: optional('void *poll_completion_refusals(void)'),
  };
  const bootstrap = bind('void *bootstrap_worker(const char *config_json)');
  const complete = bind('int32_t complete_step_event(const char *event_id, const char *result_json)');
  const isRunning = bind('bool is_worker_running(void)');
  const starvation = bind('void check_starvation_warnings(void)');
  const cleanup = bind('void cleanup_timeouts(void)');
  const map = bind('void *map_ring_region(_Out_ size_t *len_out)');
  const release = bind('int32_t release_ring_region(void *base)');
  // The handle pair (libraries before it: the pair above, released by address).
  const mapHandle = optional('void *map_ring_region_handle(_Out_ size_t *len_out, _Out_ uint64_t *handle_out)');
  const releaseHandle = optional('int32_t release_ring_region_handle(uint64_t handle)');
  const handles = mapHandle !== null && releaseHandle !== null;
  const abi = optional('uint32_t tasker_worker_abi_version(void)');
  const giveBack = optional('int32_t give_back_step_event(const char *event_id)');
  const checkpoint = optional('int32_t checkpoint_yield_step_event(const char *event_id, const char *checkpoint_json)');
  const clientCall = optional('void *client_call(const char *request_json)');
  const logMessage = optional('int32_t log_message(int32_t level, const char *message, const char *fields_json)');

  const take = (p: unknown): string | null => {
    if (p === null || p === undefined) return null;
    try {
      return koffi.decode(p, 'char', -1) as string;
    } finally {
      free(p);
    }
  };
  return {
    path,
    hasLogs: json.poll_worker_logs !== null,
    hasRefusals: json.poll_completion_refusals !== null,
    callJson(symbol) {
      const fn = json[symbol];
      return fn ? take(fn()) : null;
    },
    bootstrapWorker: (configJson) => take(bootstrap(configJson)),
    completeStepEvent: (eventId, resultJson) => complete(eventId, resultJson) as number,
    giveBackStepEvent: giveBack ? (eventId) => giveBack(eventId) as number : null,
    checkpointYieldStepEvent: checkpoint ? (eventId, checkpointJson) => checkpoint(eventId, checkpointJson) as number : null,
    clientCall: clientCall ? (requestJson) => take(clientCall(requestJson)) : null,
    logMessage: logMessage ? (level, message, fieldsJson) => logMessage(level, message, fieldsJson) as number : null,
    isWorkerRunning: () => Boolean(isRunning()),
    checkStarvationWarnings: () => void starvation(),
    cleanupTimeouts: () => void cleanup(),
    abiVersion: () => (abi ? (abi() as number) >>> 0 : null),
    hasMappingHandles: handles,
    mapRingRegion(): RegionMapping | null {
      const len: [number | bigint] = [0];
      const handle: [number | bigint] = [0];
      const base = handles ? (mapHandle as Fn)(len, handle) : map(len);
      const length = Number(len[0]);
      if (base === null || length === 0) return null;
      return { buffer: koffi.view(base, length), base, handle: handles ? Number(handle[0]) : null };
    },
    releaseRingRegion: (mapping) => (mapping.handle !== null && releaseHandle !== null ? releaseHandle(mapping.handle) : release(mapping.base)) as number,
    unload: () => lib.unload(),
  };
}
