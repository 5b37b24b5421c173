/**
 * Independent float64 forward pass of a GPT-2 HF checkpoint (`GPT2LMHeadModel`), for tests only.
 * Written directly from the Hugging Face modeling code (modeling_gpt2.py) with plain loops; shares no code with
 * the ONNX graph builders (only the types are imported).
 *
 *  - embeddings: wte[id] + wpe[position], positions 0..T-1
 *  - LayerNorm: w * (x - mean) / sqrt(var + eps) + b, biased variance
 *  - Conv1D: y[o] = b[o] + sum_i x[i] * W[i, o]   (W stored [in, out])
 *  - attention: c_attn output = q | k | v (n_embd each), head h = columns h*hd .. h*hd+hd-1 of each;
 *    causal softmax(q.k / sqrt(hd)) v, heads concatenated, c_proj; residual
 *  - MLP: c_proj(gelu_new(c_fc x)), gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); residual
 *  - ln_f, logits = h . wte[v] (tied) or lm_head.weight when untied
 */
import type { Checkpoint, Gpt2HfConfig } from '../../src/zoo/types.js';

export interface Gpt2F64Forward {
  /** ids.length × V */
  logits: Float64Array;
  /** Per block, ids.length × n_embd: the residual stream after block i. */
  hidden: Float64Array[];
}

function param(ckpt: Checkpoint, name: string, count: number): Float64Array {
  const t = ckpt.tensors.get(name);
  if (!t) throw new Error(`gpt2 f64 reference: missing tensor ${name}`);
  if (t.data.length !== count) throw new Error(`gpt2 f64 reference: ${name} has ${t.data.length} values, expected ${count}`);
  return Float64Array.from(t.data);
}

function layerNorm(x: Float64Array, T: number, n: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * n);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[t * n + i]!;
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x[t * n + i]! - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < n; i++) y[t * n + i] = (x[t * n + i]! - mean) * inv * w[i]! + b[i]!;
  }
  return y;
}

/** HF Conv1D: x [T, nIn] times W [nIn, nOut] plus b [nOut]. */
function conv1d(x: Float64Array, T: number, nIn: number, W: Float64Array, b: Float64Array, nOut: number): Float64Array {
  const y = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < nOut; o++) {
      let s = b[o]!;
      for (let i = 0; i < nIn; i++) s += x[t * nIn + i]! * W[i * nOut + o]!;
      y[t * nOut + o] = s;
    }
  }
  return y;
}

function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

export function gpt2ForwardF64(ckpt: Checkpoint, ids: number[]): Gpt2F64Forward {
  const c = ckpt.config as Gpt2HfConfig;
  if (c.model_type !== 'gpt2') throw new Error(`gpt2 f64 reference: model_type ${c.model_type}`);
  const T = ids.length;
  const H = c.n_embd;
  const V = c.vocab_size;
  const nH = c.n_head;
  const hd = H / nH;
  const F = c.n_inner ?? 4 * H;
  const eps = c.layer_norm_epsilon;
  if (T > c.n_positions) throw new Error(`gpt2 f64 reference: ${T} tokens exceed n_positions ${c.n_positions}`);

  const wte = param(ckpt, 'wte.weight', V * H);
  const wpe = param(ckpt, 'wpe.weight', c.n_positions * H);
  const x = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const id = ids[t]!;
    if (!(id >= 0 && id < V)) throw new Error(`gpt2 f64 reference: token id ${id} outside the vocabulary`);
    for (let i = 0; i < H; i++) x[t * H + i] = wte[id * H + i]! + wpe[t * H + i]!;
  }

  const hidden: Float64Array[] = [];
  const scores = new Float64Array(T);
  for (let l = 0; l < c.n_layer; l++) {
    const p = `h.${l}.`;
    // --- attention
    const a = layerNorm(x, T, H, param(ckpt, p + 'ln_1.weight', H), param(ckpt, p + 'ln_1.bias', H), eps);
    const qkv = conv1d(a, T, H, param(ckpt, p + 'attn.c_attn.weight', H * 3 * H), param(ckpt, p + 'attn.c_attn.bias', 3 * H), 3 * H);
    const ctx = new Float64Array(T * H);
    for (let h = 0; h < nH; h++) {
      const qOff = h * hd;
      const kOff = H + h * hd;
      const vOff = 2 * H + h * hd;
      for (let t = 0; t < T; t++) {
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let j = 0; j < hd; j++) dot += qkv[t * 3 * H + qOff + j]! * qkv[s * 3 * H + kOff + j]!;
          scores[s] = dot / Math.sqrt(hd);
          mx = Math.max(mx, scores[s]!);
        }
        let z = 0;
        for (let s = 0; s <= t; s++) {
          scores[s] = Math.exp(scores[s]! - mx);
          z += scores[s]!;
        }
        for (let j = 0; j < hd; j++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) acc += scores[s]! * qkv[s * 3 * H + vOff + j]!;
          ctx[t * H + h * hd + j] = acc / z;
        }
      }
    }
    const attn = conv1d(ctx, T, H, param(ckpt, p + 'attn.c_proj.weight', H * H), param(ckpt, p + 'attn.c_proj.bias', H), H);
    for (let i = 0; i < T * H; i++) x[i] = x[i]! + attn[i]!;

    // --- MLP
    const m = layerNorm(x, T, H, param(ckpt, p + 'ln_2.weight', H), param(ckpt, p + 'ln_2.bias', H), eps);
    const fc = conv1d(m, T, H, param(ckpt, p + 'mlp.c_fc.weight', H * F), param(ckpt, p + 'mlp.c_fc.bias', F), F);
    for (let i = 0; i < fc.length; i++) fc[i] = geluNew(fc[i]!);
    const proj = conv1d(fc, T, F, param(ckpt, p + 'mlp.c_proj.weight', F * H), param(ckpt, p + 'mlp.c_proj.bias', H), H);
    for (let i = 0; i < T * H; i++) x[i] = x[i]! + proj[i]!;
    hidden.push(x.slice());
  }

  const xf = layerNorm(x, T, H, param(ckpt, 'ln_f.weight', H), param(ckpt, 'ln_f.bias', H), eps);
  const tied = c.tie_word_embeddings ?? true;
  const head = tied ? wte : param(ckpt, 'lm_head.weight', V * H);
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += xf[t * H + i]! * head[v * H + i]!;
      logits[t * V + v] = s;
    }
  }
  return { logits, hidden };
}
