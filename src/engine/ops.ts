/** Per-token kernels of the bundled engine, each written to compute what llama.cpp's CPU backend computes. */

/** RMS norm (ggml_rms_norm, formats.md §1.8): x · 1/sqrt(Σx²/n + eps), sum in double, then × weight. */
export function rmsNorm(x: Float32Array, weight: Float32Array, eps: number, out: Float32Array): void {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i] as number) * (x[i] as number);
  const scale = 1 / Math.sqrt(sum / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] as number) * scale * (weight[i] as number);
}

/**
 * LayerNorm (ggml_norm, then × weight + bias): mean and variance summed in double, eps inside the sqrt,
 * as HF's torch.nn.LayerNorm (biased variance).
 */
export function layerNorm(x: Float32Array, weight: Float32Array, bias: Float32Array, eps: number, out: Float32Array): void {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i] as number;
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = (x[i] as number) - mean;
    sq += d * d;
  }
  const scale = 1 / Math.sqrt(sq / n + eps);
  for (let i = 0; i < n; i++) out[i] = ((x[i] as number) - mean) * scale * (weight[i] as number) + (bias[i] as number);
}

/** RoPE pair layouts (formats.md §1.8, llama.cpp `llama_model_rope_type`). */
export type RopeType = 'norm' | 'neox';

/**
 * Rotate every head of `x` (heads × hd, in place) at position `pos`: pair i uses θ = pos·base^(−2i/hd).
 * NORM (the llama arch, on Q/K weights the converter permuted) rotates adjacent pairs (x[2i], x[2i+1]);
 * NEOX (qwen2; HF's rotate_half on unpermuted weights) rotates (x[i], x[i + hd/2]).
 */
export function rope(type: RopeType, x: Float32Array, heads: number, hd: number, pos: number, base: number): void {
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const theta = pos * Math.pow(base, (-2 * i) / hd);
      const c = Math.cos(theta);
      const s = Math.sin(theta);
      const j0 = type === 'norm' ? h * hd + 2 * i : h * hd + i;
      const j1 = type === 'norm' ? j0 + 1 : j0 + half;
      const x0 = x[j0] as number;
      const x1 = x[j1] as number;
      x[j0] = x0 * c - x1 * s;
      x[j1] = x0 * s + x1 * c;
    }
  }
}

/**
 * Causal attention of one query position over the cached keys/values of positions 0..pos, with GQA
 * (query head h reads kv head ⌊h / (heads/kvHeads)⌋, as HF repeat_kv and llama.cpp). Caches are laid out
 * [position][kvHead][hd]; scores and softmax in double.
 */
export function attend(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  pos: number,
  heads: number,
  kvHeads: number,
  hd: number,
  out: Float32Array,
): void {
  const scores = new Float64Array(pos + 1);
  const nRep = heads / kvHeads;
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / nRep);
    let max = -Infinity;
    for (let t = 0; t <= pos; t++) {
      let s = 0;
      const ko = (t * kvHeads + kvh) * hd;
      for (let d = 0; d < hd; d++) s += (q[h * hd + d] as number) * (kCache[ko + d] as number);
      scores[t] = s * scale;
      if (s * scale > max) max = s * scale;
    }
    let sum = 0;
    for (let t = 0; t <= pos; t++) {
      const e = Math.exp((scores[t] as number) - max);
      scores[t] = e;
      sum += e;
    }
    for (let d = 0; d < hd; d++) {
      let acc = 0;
      for (let t = 0; t <= pos; t++) acc += (scores[t] as number) * (vCache[(t * kvHeads + kvh) * hd + d] as number);
      out[h * hd + d] = acc / sum;
    }
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * gelu_new, exact: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in double.
 *
 * llama.cpp's CPU backend instead looks GELU up in an fp16 table (GGML_GELU_FP16: the input rounded to
 * f16, x ≤ −10 → 0, x ≥ 10 → x), about 1e-3 relative noise against this. The bundled engine is judged
 * against the f32 oracle at NMSE ≤ 1e-7, which the table would not meet, so it computes the exact form;
 * the table's effect is a known llama.cpp-vs-oracle difference, not something this engine reproduces.
 */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}
