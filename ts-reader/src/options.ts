/** Checks of options objects: an unknown key is an `OptionsError` naming the key most likely meant. */
import { OptionsError } from './errors.ts';

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => (rows[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = d;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate `written` most likely meant: the same but for case, `_` and `-` (`handler_timeout_ms`), else
 * the nearest within a third of its length (at least one edit); null when nothing is that close. The same
 * rule as the worker core's bootstrap config.
 */
export function closestKey(written: string, candidates: readonly string[]): string | null {
  const squash = (s: string) => s.replace(/[_-]/g, '').toLowerCase();
  const flat = squash(written);
  const same = candidates.find((c) => squash(c) === flat);
  if (same !== undefined) return same;
  const limit = Math.max(1, Math.floor(Math.max(written.length, 3) / 3));
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(written.toLowerCase(), c);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Throws `OptionsError` for the first own key of `options` not in `known`. */
export function checkOptionKeys(what: string, options: object | undefined, known: readonly string[]): void {
  if (options === undefined || options === null) return;
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new OptionsError(what, key, known, closestKey(key, known));
  }
}
