/**
 * tasker-core's `BootstrapConfig` (`namespace`, `configPath`) as this package's bootstrap config: `configPath`
 * names a JSON file holding an object of this package's bootstrap keys (`database_url`, `transport`,
 * `completion_timeout_ms`, `source`, ...: `BootstrapConfig` of the package root); without it the defaults
 * and the environment apply (`TASKER_DATABASE_URL`, else `./tasker.db`). An explicit `namespace` wins over
 * the file's. The library refuses unknown keys, naming the closest one.
 */
import { readFileSync } from 'node:fs';
import { FfiCallError } from '../errors.ts';
import type { BootstrapConfig as WorkerBootstrapConfig } from '../protocol.ts';
import type { BootstrapConfig } from './types.ts';

/** Throws `FfiCallError('BOOTSTRAP_FAILED')` naming the file when it cannot be read or is not a JSON object. */
export function workerBootstrapConfig(config: BootstrapConfig | undefined): WorkerBootstrapConfig {
  const fromFile = config?.configPath === undefined ? {} : readConfigFile(config.configPath);
  return config?.namespace === undefined ? fromFile : { ...fromFile, namespace: config.namespace };
}

function readConfigFile(path: string): WorkerBootstrapConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FfiCallError(`Bootstrap failed: configPath ${path}: ${(error as Error).message}`, error, 'BOOTSTRAP_FAILED');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FfiCallError(`Bootstrap failed: configPath ${path} does not hold a JSON object of bootstrap keys`, undefined, 'BOOTSTRAP_FAILED');
  }
  return parsed as WorkerBootstrapConfig;
}
