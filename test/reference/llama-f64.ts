/**
 * Independent float64 forward pass of a LLaMA-family (llama / qwen2) HF checkpoint, for tests only.
 * Written directly from the Hugging Face modeling code conventions with plain loops; shares no code with
 * the ONNX graph builder (only the types are imported).
 *
 *  - LlamaRMSNorm: w * x / sqrt(mean(x^2) + eps)
 *  - RoPE (rotate_half, split halves): inv_freq[i] = theta^(-2i/d); for pair (j, j + d/2):
 *      out[j]       = x[j] cos(p f_j) - x[j+d/2] sin(p f_j)
 *      out[j + d/2] = x[j+d/2] cos(p f_j) + x[j] sin(p f_j)
 *  - repeat_kv: query head h attends with kv head floor(h / n_rep)
 *  - causal softmax(q.k / sqrt(d)) v, o_proj, residual
 *  - SwiGLU MLP: down(silu(gate x) * up x), residual
 *  - final norm, lm_head (or embed_tokens when tied)
 *  - optional q/k/v/o biases when present in the checkpoint
 */
import type { Checkpoint, LlamaHfConfig } from '../../src/zoo/types.js';

function get(ckpt: Checkpoint, name: string): Float64Array {
  const t = ckpt.tensors.get(name);
  if (!t) throw new Error(`f64 reference: missing tensor ${name}`);
  return Float64Array.from(t.data);
}

function getOpt(ckpt: Checkpoint, name: string): Float64Array | null {
  const t = ckpt.tensors.get(name);
  return t ? Float64Array.from(t.data) : null;
}

/** y[t, o] = sum_i x[t, i] * W[o, i] (+ b[o]); W in torch [out, in] layout. */
function linear(x: Float64Array, T: number, inDim: number, W: Float64Array, outDim: number, b: Float64Array | null): Float64Array {
  const y = new Float64Array(T * outDim);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[t * inDim + i]! * W[o * inDim + i]!;
      y[t * outDim + o] = s + (b ? b[o]! : 0);
    }
  }
  return y;
}

function rmsNorm(x: Float64Array, T: number, n: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * n);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[t * n + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[t * n + i] = w[i]! * (x[t * n + i]! * inv);
  }
  return y;
}

/** In-place rotate_half RoPE on a [T, nHeads * d] projection. */
function rope(x: Float64Array, T: number, nHeads: number, d: number, theta: number): void {
  const half = d / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const base = t * nHeads * d + h * d;
      for (let j = 0; j < half; j++) {
        const freq = 1 / Math.pow(theta, (2 * j) / d);
        const c = Math.cos(t * freq);
        const s = Math.sin(t * freq);
        const a = x[base + j]!;
        const b = x[base + j + half]!;
        x[base + j] = a * c - b * s;
        x[base + j + half] = b * c + a * s;
      }
    }
  }
}

export interface F64Forward {
  /** ids.length × V */
  logits: Float64Array;
  /** Per layer, ids.length × H: the residual stream after decoder block i. */
  hidden: Float64Array[];
}

/** Logits [ids.length × V] in float64. */
export function forwardF64(ckpt: Checkpoint, ids: number[]): Float64Array {
  return forwardF64Detailed(ckpt, ids).logits;
}

/** Logits and per-layer residual streams in float64. */
export function forwardF64Detailed(ckpt: Checkpoint, ids: number[]): F64Forward {
  const c = ckpt.config as LlamaHfConfig;
  const T = ids.length;
  const H = c.hidden_size;
  const V = c.vocab_size;
  const nH = c.num_attention_heads;
  const nKV = c.num_key_value_heads;
  const d = c.head_dim ?? H / nH;
  const F = c.intermediate_size;
  const nRep = nH / nKV;
  const eps = c.rms_norm_eps;

  const emb = get(ckpt, 'model.embed_tokens.weight');
  const x = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const id = ids[t]!;
    for (let i = 0; i < H; i++) x[t * H + i] = emb[id * H + i]!;
  }

  const hidden: Float64Array[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    // --- attention
    const xn = rmsNorm(x, T, H, get(ckpt, p + 'input_layernorm.weight'), eps);
    const q = linear(xn, T, H, get(ckpt, p + 'self_attn.q_proj.weight'), nH * d, getOpt(ckpt, p + 'self_attn.q_proj.bias'));
    const k = linear(xn, T, H, get(ckpt, p + 'self_attn.k_proj.weight'), nKV * d, getOpt(ckpt, p + 'self_attn.k_proj.bias'));
    const v = linear(xn, T, H, get(ckpt, p + 'self_attn.v_proj.weight'), nKV * d, getOpt(ckpt, p + 'self_attn.v_proj.bias'));
    rope(q, T, nH, d, c.rope_theta);
    rope(k, T, nKV, d, c.rope_theta);

    const ctx = new Float64Array(T * nH * d);
    const scale = 1 / Math.sqrt(d);
    const w = new Float64Array(T);
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / nRep);
      for (let t = 0; t < T; t++) {
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let j = 0; j < d; j++) dot += q[t * nH * d + h * d + j]! * k[s * nKV * d + kvh * d + j]!;
          w[s] = dot * scale;
          if (w[s]! > mx) mx = w[s]!;
        }
        let z = 0;
        for (let s = 0; s <= t; s++) {
          w[s] = Math.exp(w[s]! - mx);
          z += w[s]!;
        }
        for (let j = 0; j < d; j++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) acc += w[s]! * v[s * nKV * d + kvh * d + j]!;
          ctx[t * nH * d + h * d + j] = acc / z;
        }
      }
    }
    const attn = linear(ctx, T, nH * d, get(ckpt, p + 'self_attn.o_proj.weight'), H, getOpt(ckpt, p + 'self_attn.o_proj.bias'));
    for (let i = 0; i < T * H; i++) x[i] = x[i]! + attn[i]!;

    // --- MLP
    const xn2 = rmsNorm(x, T, H, get(ckpt, p + 'post_attention_layernorm.weight'), eps);
    const gate = linear(xn2, T, H, get(ckpt, p + 'mlp.gate_proj.weight'), F, null);
    const up = linear(xn2, T, H, get(ckpt, p + 'mlp.up_proj.weight'), F, null);
    const act = new Float64Array(T * F);
    for (let i = 0; i < T * F; i++) {
      const g = gate[i]!;
      act[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
    const down = linear(act, T, F, get(ckpt, p + 'mlp.down_proj.weight'), H, null);
    for (let i = 0; i < T * H; i++) x[i] = x[i]! + down[i]!;
    hidden.push(x.slice());
  }

  const xf = rmsNorm(x, T, H, get(ckpt, 'model.norm.weight'), eps);
  const head = getOpt(ckpt, 'lm_head.weight') ?? (c.tie_word_embeddings ? emb : null);
  if (!head) throw new Error('f64 reference: no lm_head.weight and embeddings are not tied');
  return { logits: linear(xf, T, H, head, V, null), hidden };
}
