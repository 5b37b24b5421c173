/**
 * Tensor statistics and pairwise comparison metrics, computed in f64 over decoded (f32) values.
 * Pure functions over typed arrays; no fs.
 */

/** Summary statistics of one tensor's values (`apr tensors --json` reports the same set). */
export interface TensorStats {
  /** Number of elements. */
  count: number;
  /** Mean of the finite values; null when there are none. */
  mean: number | null;
  /** Population standard deviation of the finite values; null when there are none. */
  std: number | null;
  /** Smallest finite value; null when there are none. */
  min: number | null;
  /** Largest finite value; null when there are none. */
  max: number | null;
  /** Fraction of elements that are exactly ±0 (0 for an empty tensor). */
  zeroFraction: number;
  nanCount: number;
  infCount: number;
}

/**
 * Statistics of `values`. NaN and ±Inf are counted, not averaged: mean/std/min/max cover the finite
 * values only, so one bad element does not hide the rest of the distribution. Two passes (mean, then
 * squared deviations) keep the variance exact enough for near-constant tensors.
 */
export function tensorStats(values: ArrayLike<number>): TensorStats {
  const n = values.length;
  let finite = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let zeros = 0;
  let nanCount = 0;
  let infCount = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number; // i < n = values.length
    if (v !== v) {
      nanCount++;
      continue;
    }
    if (v === Infinity || v === -Infinity) {
      infCount++;
      continue;
    }
    if (v === 0) zeros++;
    finite++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const zeroFraction = n === 0 ? 0 : zeros / n;
  if (finite === 0) return { count: n, mean: null, std: null, min: null, max: null, zeroFraction, nanCount, infCount };
  const mean = sum / finite;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number; // i < n = values.length
    if (Number.isFinite(v)) ss += (v - mean) * (v - mean);
  }
  return { count: n, mean, std: Math.sqrt(ss / finite), min, max, zeroFraction, nanCount, infCount };
}

export { pairMetrics, type PairMetrics } from '../metrics.js';
