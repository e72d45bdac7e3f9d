/** Small statistics and formatting helpers shared by the hot-path bench and its driver. */

/** One measured case on one runtime. `ns` is the headline figure (ns per op or per event). */
export interface CaseResult {
  ns: number;
  /** 25th and 75th percentile of the samples the headline is the median of (same unit). */
  p25: number;
  p75: number;
  /** Samples behind the median (per-call timings, or rounds of a block). */
  samples: number;
  /** Operations measured in all (events, polls, completions). */
  ops: number;
  /** Polls that returned null and were not counted (per-event cases). */
  skipped?: number;
  /** Free text shown in the details table. */
  note?: string;
}

export interface PairedResult {
  value: number;
  p25: number;
  p75: number;
  pairs: number;
}

/** What one runtime reports to the driver: cases, paired ratios and checks. */
export interface RuntimeReport {
  runtime: string;
  version: string;
  timerOverheadNs: number;
  cases: Record<string, CaseResult>;
  /**
   * Figures from measurements taken side by side (same round, alternating order): medians of per-round
   * ratios (`ring/floor`) or differences in ns (`diff:` keys), with their quartiles.
   */
  paired: Record<string, PairedResult>;
  /** Differences of per-layer medians (ns per event), from the interleaved breakdown of the ring path. */
  breakdown: Record<string, number>;
  checks: Record<string, string | number | boolean>;
  seconds: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function summarize(values: readonly number[]): { median: number; p25: number; p75: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p25: quantile(sorted, 0.25), p75: quantile(sorted, 0.75) };
}

/** ns with a precision that suits its size: 7.3 ns, 812 ns, 6 840 ns. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns < 100) return `${ns.toFixed(1)} ns`;
  return `${Math.round(ns)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ' ')} ns`;
}

export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(r < 10 ? 3 : 1)}x` : 'n/a';
}
