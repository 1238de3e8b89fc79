// Sample summaries for results JSON: numpy-compatible percentiles, zero-filled when
// empty (JSON has no NaN), and bounded quantile samples so CDFs stay small on disk.
import type { Distribution } from './types.js';

/** Percentile by linear interpolation between closest ranks (numpy's default). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (sorted.length - 1) * q;
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

const EMPTY: Distribution = { mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0, min: 0, count: 0 };

/** Ascending copy of the finite values. */
export function sortedFinite(values: readonly number[]): number[] {
  return values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
}

/** Summarize the finite values; all zeros with count 0 when there are none. */
export function distribution(values: readonly number[]): Distribution {
  const sorted = sortedFinite(values);
  if (sorted.length === 0) return { ...EMPTY };
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    mean: sum / sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1]!,
    min: sorted[0]!,
    count: sorted.length,
  };
}

/**
 * The sorted finite values when there are at most `maxPoints` (default 2000), else
 * `maxPoints` evenly spaced quantiles (q = i / (maxPoints - 1)), min and max included.
 */
export function quantilePoints(values: readonly number[], maxPoints = 2000): number[] {
  const sorted = sortedFinite(values);
  if (sorted.length <= maxPoints) return sorted;
  if (maxPoints < 2) return maxPoints === 1 ? [percentile(sorted, 0.5)] : [];
  const out: number[] = new Array<number>(maxPoints);
  for (let i = 0; i < maxPoints; i++) out[i] = percentile(sorted, i / (maxPoints - 1));
  return out;
}
