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
    const v = values[i] as number;
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
    const v = values[i] as number;
    if (Number.isFinite(v)) ss += (v - mean) * (v - mean);
  }
  return { count: n, mean, std: Math.sqrt(ss / finite), min, max, zeroFraction, nanCount, infCount };
}

/** How close `b` is to the reference `a` (same length, same layout). */
export interface PairMetrics {
  /**
   * Signal-to-quantization-noise ratio 20·log10(‖a‖/‖a−b‖) in dB: +Infinity when the values are
   * identical, −Infinity when a is all zeros and b is not; null when either side has NaN/Inf.
   */
  sqnrDb: number | null;
  /** a·b/(‖a‖‖b‖); 1 when both are all zeros, 0 when only one is; null with NaN/Inf. */
  cosine: number | null;
  /** max |a−b|; null with NaN/Inf. */
  maxAbsDiff: number | null;
  /** Every element equal (NaN matching NaN, +0 matching −0). */
  isIdentical: boolean;
  /** Elements where a or b is NaN or ±Inf. */
  nonFiniteCount: number;
}

/** Compare `b` against the reference `a` element by element, accumulating in f64. */
export function pairMetrics(a: ArrayLike<number>, b: ArrayLike<number>): PairMetrics {
  if (a.length !== b.length) throw new RangeError(`pairMetrics: lengths differ (${a.length} vs ${b.length})`);
  let aa = 0;
  let bb = 0;
  let ab = 0;
  let dd = 0;
  let maxAbs = 0;
  let nonFinite = 0;
  let identical = true;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y && !(x !== x && y !== y)) identical = false;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      nonFinite++;
      continue;
    }
    const d = x - y;
    aa += x * x;
    bb += y * y;
    ab += x * y;
    dd += d * d;
    const ad = Math.abs(d);
    if (ad > maxAbs) maxAbs = ad;
  }
  if (nonFinite > 0) return { sqnrDb: identical ? Infinity : null, cosine: null, maxAbsDiff: null, isIdentical: identical, nonFiniteCount: nonFinite };
  const sqnrDb = dd === 0 ? Infinity : aa === 0 ? -Infinity : 10 * Math.log10(aa / dd);
  const cosine = aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : Math.max(-1, Math.min(1, ab / Math.sqrt(aa * bb)));
  return { sqnrDb, cosine, maxAbsDiff: maxAbs, isIdentical: identical, nonFiniteCount: 0 };
}
