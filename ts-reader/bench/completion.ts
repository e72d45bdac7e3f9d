/**
 * The result every bench completion carries: fixtures/completion-success.json compacted (what a handler's
 * JSON.stringify sends), with the step_uuid of the event it completes. The worker core refuses a result that
 * names another step than its event's (`invalid_result`, the event stays in flight), so one string can no
 * longer serve every event.
 *
 * A result is built cheaply: the fixture's `step_uuid` is its first key, so the string is a constant head,
 * the event's 36-character uuid and a constant tail, the same length and bytes as the fixture's but for
 * the uuid. Benches that time a completion build the strings outside the timed region (`resultsFor`, flat
 * like JSON.stringify's); the end-to-end handler builds its own per event, as a real handler builds its
 * result.
 */
import { readFileSync } from 'node:fs';

/** The compacted fixture (its own step_uuid): the size every result has. */
export const completionJson = JSON.stringify(JSON.parse(readFileSync(new URL('../../fixtures/completion-success.json', import.meta.url), 'utf8')));

const HEAD = '{"step_uuid":"';
const UUID_LENGTH = 36;
if (!completionJson.startsWith(HEAD) || completionJson[HEAD.length + UUID_LENGTH] !== '"') {
  throw new Error('fixtures/completion-success.json no longer starts with its 36-character step_uuid: update bench/completion.ts');
}
const TAIL = completionJson.slice(HEAD.length + UUID_LENGTH);

/** The fixture's result for the step `stepUuid` (a canonical 36-character uuid, as the worker core sends). */
export function completionFor(stepUuid: string): string {
  if (stepUuid.length !== UUID_LENGTH) throw new Error(`step_uuid '${stepUuid}' is not a 36-character uuid`);
  return HEAD + stepUuid + TAIL;
}

/**
 * `completionFor(steps[i])` into `results[i]` for the first `n` steps, each made flat (one buffer, as
 * JSON.stringify returns it, not a concatenation the engine flattens on first read): for timed completions,
 * built before the clock starts.
 */
export function resultsFor(steps: readonly string[], n: number, results: string[]): string[] {
  for (let i = 0; i < n; i++) results[i] = flat(completionFor(steps[i] as string));
  return results;
}

/** Reading a string as a number makes V8 and JSC flatten a concatenation (the `flatstr` trick). */
function flat(text: string): string {
  flattened += Number.isNaN(Number(text)) ? 1 : 0;
  return text;
}

/** Keeps the number reads observable. */
export let flattened = 0;
