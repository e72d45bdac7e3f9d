/**
 * The reproduction of tasker-core's napi-rs poll path (`benches/napi-repro`, a Node-API addon), loaded for
 * the js_consumer bench's `napi` cases. `TASKER_NAPI_REPRO_PATH` names the addon (the bench builds it);
 * `process.dlopen` from node:process loads it on Node, Bun and Deno (Deno: with --allow-ffi).
 *
 * On load the addon is handed the compacted fixture to hold, and its first poll is checked against this
 * package's own mapping of the same event (`toNapiStepEvent`, what `createNapiModule().pollStepEvents()`
 * returns): the same `NapiStepEvent`, property for property, so both paths build the same object.
 */
import process from 'node:process';
import { isDeepStrictEqual } from 'node:util';
import type { FfiStepEvent } from '../src/protocol.ts';
import { toNapiStepEvent } from '../src/tasker-core/event-mapping.ts';
import type { NapiStepEvent } from '../src/tasker-core/types.ts';

/** The addon's functions (napi-rs names them in camelCase). */
export interface NapiRepro {
  /** Deserializes a step event (snake_case JSON) into the Rust event every poll clones. */
  loadEvent(json: string): void;
  /** The global mutex locked, the held event cloned and converted, the JS object built by napi-rs. */
  pollStepEvents(): NapiStepEvent | null;
}

/** The loaded addon, or why there is none (no path given, a runtime that cannot load it, a wrong event). */
export type NapiReproLoad = { addon: NapiRepro; path: string } | { addon: null; reason: string };

export function loadNapiRepro(eventJson: string): NapiReproLoad {
  const path = process.env.TASKER_NAPI_REPRO_PATH;
  if (!path) return { addon: null, reason: 'TASKER_NAPI_REPRO_PATH is not set' };
  const module = { exports: {} as Partial<NapiRepro> };
  try {
    process.dlopen(module, path);
  } catch (error) {
    return { addon: null, reason: `process.dlopen(${path}) failed: ${(error as Error).message}` };
  }
  const addon = module.exports;
  if (typeof addon.loadEvent !== 'function' || typeof addon.pollStepEvents !== 'function') {
    return { addon: null, reason: `${path} exports ${Object.keys(addon).join(', ') || 'nothing'}, not loadEvent and pollStepEvents` };
  }
  addon.loadEvent(eventJson);
  const polled = addon.pollStepEvents();
  const mapped = toNapiStepEvent(JSON.parse(eventJson) as FfiStepEvent);
  if (!isDeepStrictEqual(polled, mapped)) {
    throw new Error(`the napi reproduction's event differs from toNapiStepEvent's: ${JSON.stringify(polled)} vs ${JSON.stringify(mapped)}`);
  }
  return { addon: addon as NapiRepro, path };
}
