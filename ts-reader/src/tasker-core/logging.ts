/**
 * tasker-core's `log*` calls into the worker core's tracing (the library's `log_message`), with their fields:
 * the same records `pollWorkerLogs()` returns and the worker core prints. Never throws. Against a library
 * without `log_message` the record goes to the console instead, by level.
 */

/** tasker-core's levels, as `log_message` numbers them. */
export const LOG_LEVELS = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 } as const;
export type LogLevelName = keyof typeof LOG_LEVELS;

/** Writes one record: true when the library took it, false when it has no `log_message`. */
export type LogSink = (level: number, message: string, fieldsJson: string | null) => boolean;

export function logRecord(sink: () => LogSink, level: LogLevelName, message: string, fields?: Record<string, unknown>): void {
  let fieldsJson: string | null = null;
  let text = String(message);
  if (fields != null) {
    try {
      fieldsJson = JSON.stringify(fields);
    } catch (error) {
      text = `${text} (fields not serialisable: ${(error as Error).message})`;
    }
  }
  try {
    if (sink()(LOG_LEVELS[level], text, fieldsJson)) return;
  } catch {
    // The library is not loadable or closed: the console below still shows the record.
  }
  const line = fieldsJson === null ? text : `${text} ${fieldsJson}`;
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else if (level === 'info') console.info(line);
  else console.debug(line);
}
