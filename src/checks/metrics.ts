/** Logit metrics over row-major [rows × vocab] arrays. r = oracle (reference), c = candidate. */

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

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = (row[i] as number) - lse;
  return out;
}

/** KL(r ‖ c) per row, softmax in f64. */
export function klPerRow(r: Float32Array, c: Float32Array, vocab: number): number[] {
  const rows = r.length / vocab;
  const out: number[] = [];
  for (let t = 0; t < rows; t++) {
    const lr = logSoftmax(r.subarray(t * vocab, (t + 1) * vocab));
    const lc = logSoftmax(c.subarray(t * vocab, (t + 1) * vocab));
    let kl = 0;
    for (let i = 0; i < vocab; i++) kl += Math.exp(lr[i] as number) * ((lr[i] as number) - (lc[i] as number));
    out.push(Math.max(0, kl));
  }
  return out;
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
