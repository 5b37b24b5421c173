/**
 * The metrics, each written once, used by the checks and by `tmgt diff` / `tmgt inspect` alike so they report the same
 * number for the same pair: SQNR, cosine, max |a−b|, bit differences, NMSE, KL, percentiles, and reading a number from
 * model metadata. Pure functions over arrays; imports nothing.
 */

/** 10·log10(Σx²/Σd²) from the sums: +Infinity when d is all zero, −Infinity when x is (and d is not). */
function sqnrFromSums(xx: number, dd: number): number {
  if (Number.isNaN(dd) || Number.isNaN(xx)) return -Infinity;
  return dd === 0 ? Infinity : xx === 0 ? -Infinity : 10 * Math.log10(xx / dd);
}

/**
 * Signal-to-quantization-noise ratio of `y` against the reference `x`, 10·log10(Σx²/Σ(x−y)²) in dB, accumulated in f64:
 * +Infinity when identical, −Infinity when x is all zeros and y is not, or when a NaN/Inf makes the noise unbounded.
 */
export function sqnrDb(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let xx = 0;
  let dd = 0;
  let identical = true;
  for (let i = 0; i < x.length; i++) {
    const a = x[i] as number; // i < x.length
    const b = y[i] as number; // callers pass equal lengths
    if (a === b || (a !== a && b !== b)) {
      if (Number.isFinite(a)) xx += a * a;
      continue;
    }
    identical = false;
    const d = a - b;
    xx += a * a;
    dd += d * d;
  }
  if (identical) return Infinity;
  if (!Number.isFinite(dd) || !Number.isFinite(xx)) return -Infinity;
  return sqnrFromSums(xx, dd);
}

/** Bit-level comparison of two f32 arrays: how many elements differ, the first, and the largest |difference|. */
export function diffBits(expected: Float32Array, got: Float32Array): { differing: number; first: number; maxAbsDiff: number } {
  const a = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const b = new Uint32Array(got.buffer, got.byteOffset, got.length);
  let differing = 0;
  let first = -1;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    differing++;
    if (first < 0) first = i;
    const d = Math.abs((expected[i] as number) - (got[i] as number));
    if (!(d <= maxAbsDiff)) maxAbsDiff = d;
  }
  return { differing, first, maxAbsDiff };
}

/** A metadata value as a number (GGUF u64 values arrive as bigint), or undefined when it is not a number. */
export function metaNumberOf(v: unknown): number | undefined {
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

/** How close `b` is to the reference `a` (same length, same layout). */
export interface PairMetrics {
  /** `sqnrDb(a, b)`: the same number the fidelity check reports for the same pair. */
  sqnrDb: number;
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
    const x = a[i] as number; // i < a.length
    const y = b[i] as number; // b.length === a.length: checked above
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
  if (nonFinite > 0)
    return { sqnrDb: identical ? Infinity : -Infinity, cosine: null, maxAbsDiff: null, isIdentical: identical, nonFiniteCount: nonFinite };
  const sqnrDb = sqnrFromSums(aa, dd);
  const cosine = aa === 0 && bb === 0 ? 1 : aa === 0 || bb === 0 ? 0 : Math.max(-1, Math.min(1, ab / Math.sqrt(aa * bb)));
  return { sqnrDb, cosine, maxAbsDiff: maxAbs, isIdentical: identical, nonFiniteCount: 0 };
}

// ---- logits: row-major [rows × vocab] arrays, r = oracle (reference), c = candidate ----

export function countNonFinite(a: Float32Array): number {
  let n = 0;
  for (const v of a) if (!Number.isFinite(v)) n++;
  return n;
}

/** Σ(c−r)²/Σr² (ggml test-backend-ops' NMSE). */
export function nmse(r: Float32Array, c: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    const d = (c[i] as number) - (r[i] as number);
    num += d * d;
    den += (r[i] as number) * (r[i] as number);
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}

/**
 * log Σ exp of every row of `a` (rows of `vocab`), in f64: what log-softmax subtracts. Kept per array (a real
 * vocabulary's logits are tens of MB, and the logits, tokens and cross-runtime checks all read the same ones).
 */
function rowLse(a: Float32Array, vocab: number): Float64Array {
  const known = lseCache.get(a);
  if (known !== undefined && known.vocab === vocab) return known.lse;
  const rows = Math.floor(a.length / vocab);
  const lse = new Float64Array(rows);
  for (let t = 0; t < rows; t++) {
    const at = t * vocab;
    let max = -Infinity;
    for (let i = at; i < at + vocab; i++) if ((a[i] as number) > max) max = a[i] as number; // i < rows · vocab ≤ length
    let sum = 0;
    for (let i = at; i < at + vocab; i++) sum += Math.exp((a[i] as number) - max); // as above
    lse[t] = max + Math.log(sum);
  }
  lseCache.set(a, { vocab, lse });
  return lse;
}
const lseCache = new WeakMap<Float32Array, { vocab: number; lse: Float64Array }>();
/** klPerRow per pair of arrays (the logits and tokens checks ask for the same pair). */
const klCache = new WeakMap<Float32Array, WeakMap<Float32Array, { vocab: number; kl: number[] }>>();

/** KL(r ‖ c) per row, softmax in f64. */
export function klPerRow(r: Float32Array, c: Float32Array, vocab: number): number[] {
  const known = klCache.get(r)?.get(c);
  if (known !== undefined && known.vocab === vocab) return [...known.kl];
  const rows = r.length / vocab;
  const lseR = rowLse(r, vocab);
  const lseC = rowLse(c, vocab);
  const out: number[] = [];
  for (let t = 0; t < rows; t++) {
    const at = t * vocab;
    const a = lseR[t] as number; // t < rows
    const b = lseC[t] as number; // c has the rows of r (callers check the shapes)
    let kl = 0;
    for (let i = at; i < at + vocab; i++) {
      const lr = (r[i] as number) - a; // i < rows · vocab
      kl += Math.exp(lr) * (lr - ((c[i] as number) - b)); // as above
    }
    out.push(Math.max(0, kl));
  }
  let inner = klCache.get(r);
  if (inner === undefined) klCache.set(r, (inner = new WeakMap()));
  inner.set(c, { vocab, kl: out });
  return [...out];
}

/**
 * llama.cpp's `--kl-divergence` statistics over the scored positions, so our numbers can stand beside its table: KLD mean
 * and percentiles (99.9, 99, 95, 90, median), Δp (candidate − oracle probability of the token that came next) mean and
 * RMS, and same-top-p (positions whose most likely token is the same). Without `ids`, Δp is taken on the oracle's top token.
 */
export function klStatistics(r: Float32Array, c: Float32Array, vocab: number, kl: number[], ids?: readonly number[]) {
  const rows = r.length / vocab;
  let dpSum = 0;
  let dpSq = 0;
  let dpCount = 0;
  let sameTop = 0;
  const lseR = rowLse(r, vocab);
  const lseC = rowLse(c, vocab);
  for (let t = 0; t < rows; t++) {
    const at = t * vocab;
    let br = 0;
    let bc = 0;
    for (let i = 1; i < vocab; i++) {
      if ((r[at + i] as number) > (r[at + br] as number)) br = i; // at + i < rows · vocab
      if ((c[at + i] as number) > (c[at + bc] as number)) bc = i; // as above
    }
    if (br === bc) sameTop++;
    const next = ids === undefined ? br : ids[t + 1];
    if (next === undefined || next < 0 || next >= vocab) continue;
    const dp = Math.exp((c[at + next] as number) - (lseC[t] as number)) - Math.exp((r[at + next] as number) - (lseR[t] as number)); // t < rows
    dpSum += dp;
    dpSq += dp * dp;
    dpCount++;
  }
  return {
    klMean: mean(kl),
    klP999: percentile(kl, 99.9),
    klP99: percentile(kl, 99),
    klP95: percentile(kl, 95),
    klP90: percentile(kl, 90),
    klMedian: percentile(kl, 50),
    deltaPMean: dpCount === 0 ? 0 : dpSum / dpCount,
    deltaPRms: dpCount === 0 ? 0 : Math.sqrt(dpSq / dpCount),
    sameTopP: rows === 0 ? 1 : sameTop / rows,
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

export function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

function top2(row: Float32Array): { best: number; margin: number } {
  let best = 0;
  let second = -1;
  for (let i = 1; i < row.length; i++) {
    if ((row[i] as number) > (row[best] as number)) {
      second = best;
      best = i;
    } else if (second < 0 || (row[i] as number) > (row[second] as number)) second = i;
  }
  return { best, margin: second < 0 ? Infinity : (row[best] as number) - (row[second] as number) };
}

/**
 * Same top-1 over rows whose oracle top-2 margin is not a near-tie. A row is a near-tie when its margin is
 * below `nearTie(row)` — the smallest margin the target's allowed logit error could not flip.
 */
export function sameTop1(
  r: Float32Array,
  c: Float32Array,
  vocab: number,
  nearTie: (row: Float32Array) => number,
): { rate: number; counted: number; mismatchedRows: number[]; nearTies: number } {
  const rows = r.length / vocab;
  let counted = 0;
  let same = 0;
  const mismatchedRows: number[] = [];
  for (let t = 0; t < rows; t++) {
    const row = r.subarray(t * vocab, (t + 1) * vocab);
    const a = top2(row);
    if (a.margin < nearTie(row)) continue;
    counted++;
    if (top2(c.subarray(t * vocab, (t + 1) * vocab)).best === a.best) same++;
    else mismatchedRows.push(t);
  }
  return { rate: counted === 0 ? 1 : same / counted, counted, mismatchedRows, nearTies: rows - counted };
}

/** Root mean square of a row. */
export function rms(row: Float32Array): number {
  let s = 0;
  for (const v of row) s += v * v;
  return Math.sqrt(s / row.length);
}

/** Top-1 minus top-2 logit of a row (Infinity for a one-entry row). */
export function topMargin(row: Float32Array): number {
  return top2(row).margin;
}

/** The oracle at one greedy step: its top-1 − top-2 logit margin and the row's rms (for the near-tie rule). */
export interface GreedyStep {
  margin: number;
  rms: number;
}

/**
 * The oracle at each greedy step: `logits` is its teacher-forced run over prompt + greedy ids
 * ([ids.length × vocab]), and the row at `promptLength − 1 + k` chose greedy token k.
 */
export function greedySteps(logits: Float32Array, vocab: number, promptLength: number, steps: number): GreedyStep[] {
  const out: GreedyStep[] = [];
  for (let k = 0; k < steps; k++) {
    const at = promptLength - 1 + k;
    if (at < 0 || (at + 1) * vocab > logits.length) break;
    const row = logits.subarray(at * vocab, (at + 1) * vocab);
    out.push({ margin: topMargin(row), rms: rms(row) });
  }
  return out;
}
