/**
 * Forward passes of the three zoo architectures in tfjs ops, over parameters held under their exact Hugging
 * Face names and shapes (Linear weights [out, in]; GPT-2 Conv1D weights [in, out]), so the trained variables
 * are written out as the checkpoint without any re-layout. Conventions follow the HF eager forward:
 *
 *  - llama / qwen2: embed → per layer { h += o_proj(attn(rope(q), rope(k), v)) ; h += down(silu(gate) * up) }
 *    → RMSNorm → lm_head (or embed_tokens when tied). RMSNorm w · x / sqrt(mean(x²) + eps); RoPE rotate_half
 *    (split halves) with inv_freq = theta^(-2i/d); GQA: query head h reads kv head h // n_rep; q/k/v biases
 *    when the checkpoint has them (qwen2).
 *  - gpt2: wte[ids] + wpe[pos] → per layer { h += c_proj(attn(ln_1 h)) ; h += mlp.c_proj(gelu_new(c_fc(ln_2 h))) }
 *    → ln_f → wte (tied). LayerNorm with biased variance; c_attn splits into q | k | v along the output dim.
 *  - attention: softmax(q kᵀ / √head_dim + causal mask) v.
 *
 * Embedding lookups are one-hot matmuls: tf.gather's gradient (UnsortedSegmentSum) has no WASM kernel.
 * Every product goes through `mm`, whose gradient transposes explicitly: the WASM BatchMatMul kernel with
 * transposeA/transposeB set (what tf.matMul's own gradient uses) is 5–15× slower than a plain one.
 */
import * as tf from '@tensorflow/tfjs';
import { commonDims, hasQkvBias, headDim, isGpt2, type Gpt2HfConfig, type HfConfig, type LlamaHfConfig } from '../src/zoo/types.js';

export type Params = Map<string, tf.Variable>;

/**
 * RoPE cos/sin tables [T, hd] as HF computes them in float32: inv_freq = 1 / base^(arange(0, d, 2) / d),
 * freqs = pos · inv_freq, emb = cat(freqs, freqs).
 */
export function ropeTables(theta: number, dim: number, T: number): { cos: Float32Array; sin: Float32Array } {
  const half = dim / 2;
  const f = Math.fround;
  const cos = new Float32Array(T * dim);
  const sin = new Float32Array(T * dim);
  for (let i = 0; i < half; i++) {
    const invFreq = f(1 / f(Math.pow(f(theta), f(f(2 * i) / dim))));
    for (let p = 0; p < T; p++) {
      const angle = f(p * invFreq);
      cos[p * dim + i] = cos[p * dim + half + i] = Math.cos(angle);
      sin[p * dim + i] = sin[p * dim + half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Additive causal mask [T, T]: 0 on/below the diagonal, a large negative number above. */
function causalMask(T: number): tf.Tensor2D {
  const data = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) data[i * T + j] = -1e9;
  return tf.tensor2d(data, [T, T]);
}

function param(params: Params, name: string): tf.Variable {
  const p = params.get(name);
  if (p === undefined) throw new Error(`missing parameter ${name}`);
  return p;
}

/** Swap the last two axes. */
function swapLast<T extends tf.Tensor>(x: T): T {
  const r = x.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/** a @ b (same batch dims, no broadcasting), differentiable with explicitly transposed operands. */
const mmOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
      return [tf.matMul(g, swapLast(sb)), tf.matMul(swapLast(sa), g)];
    },
  };
});

export function mm<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  return mmOp(a, b) as T;
}

/** onehot(ids) @ table; the (constant) one-hot operand gets a zero gradient. */
const embedOp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [oneHot, table, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([oneHot]);
  return {
    value: tf.matMul(oneHot, table),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const oh = saved[0] as tf.Tensor;
      return [tf.zerosLike(oh), tf.matMul(tf.transpose(oh), dy)];
    },
  };
});

function embedLookup(oneHot: tf.Tensor2D, table: tf.Tensor): tf.Tensor2D {
  return embedOp(oneHot, table) as tf.Tensor2D;
}

/** x [N, in] @ Wᵀ (W: [out, in], HF Linear) + b. */
function linear(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const y = mm(x, tf.transpose(w));
  return b === undefined ? y : tf.add(y, b);
}

function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

function layerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const mu = tf.mean(x, -1, true);
  const xc = tf.sub(x, mu);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), w), b);
}

/** gelu_new (tanh approximation): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))). */
function geluNew(x: tf.Tensor2D): tf.Tensor2D {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** [N=B·T, heads·hd] → [B, heads, T, hd]. */
function toHeads(x: tf.Tensor2D, B: number, T: number, heads: number, hd: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [B, T, heads, hd]), [0, 2, 1, 3]);
}

/** HF rotate_half RoPE on [B, heads, T, hd] with cos/sin [T, hd]. */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D, hd: number): tf.Tensor4D {
  const half = hd / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/**
 * Causal attention with GQA. q [B, nH, T, hd], k/v [B, nKV, T, hd]; query heads are grouped by their kv
 * head (h = kv·nRep + r), so q is viewed as [B, nKV, nRep·T, hd] and multiplied with k directly — the
 * same function as HF's repeat_kv, without materialising repeated keys. Returns [B·T, nH·hd].
 */
function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask: tf.Tensor2D,
  B: number,
  T: number,
  nH: number,
  nKV: number,
  hd: number,
): tf.Tensor2D {
  const nRep = nH / nKV;
  const qg = tf.reshape(q, [B, nKV, nRep * T, hd]);
  const scores = tf.mul(mm(qg, swapLast(k)), 1 / Math.sqrt(hd)); // [B, nKV, nRep·T, T]
  const masked = tf.add(tf.reshape(scores, [B, nH, T, T]), mask);
  const probs = tf.reshape(tf.softmax(masked, -1), [B, nKV, nRep * T, T]);
  const ctx = tf.reshape(mm(probs, v), [B, nH, T, hd]);
  return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * T, nH * hd]);
}

/** Constant tensors of a forward at sequence length T (RoPE tables, mask); dispose after use. */
export interface ForwardConsts {
  T: number;
  mask: tf.Tensor2D;
  cos?: tf.Tensor2D;
  sin?: tf.Tensor2D;
}

export function forwardConsts(config: HfConfig, T: number): ForwardConsts {
  const mask = causalMask(T);
  if (isGpt2(config)) return { T, mask };
  const hd = headDim(config);
  const rope = ropeTables(config.rope_theta, hd, T);
  return { T, mask, cos: tf.tensor2d(rope.cos, [T, hd]), sin: tf.tensor2d(rope.sin, [T, hd]) };
}

export function disposeConsts(c: ForwardConsts): void {
  c.mask.dispose();
  c.cos?.dispose();
  c.sin?.dispose();
}

/** Logits [B·T, V] for ids [B, T] (int32). */
export function forward(config: HfConfig, params: Params, ids: tf.Tensor2D, consts: ForwardConsts): tf.Tensor2D {
  return isGpt2(config) ? gpt2Forward(config, params, ids, consts) : llamaForward(config, params, ids, consts);
}

function llamaForward(config: LlamaHfConfig, params: Params, ids: tf.Tensor2D, c: ForwardConsts): tf.Tensor2D {
  const [B, T] = ids.shape;
  const V = config.vocab_size;
  const nH = config.num_attention_heads;
  const nKV = config.num_key_value_heads;
  const hd = headDim(config);
  const eps = config.rms_norm_eps;
  const bias = hasQkvBias(config);
  if (c.cos === undefined || c.sin === undefined || c.T !== T) throw new Error('llama forward needs RoPE tables for this length');
  const embed = param(params, 'model.embed_tokens.weight');
  let h: tf.Tensor2D = embedLookup(tf.oneHot(tf.reshape(ids, [B * T]), V) as tf.Tensor2D, embed);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const get = (n: string) => param(params, `${p}.${n}`);
    const xn = rmsNorm(h, get('input_layernorm.weight'), eps);
    const q = applyRope(
      toHeads(linear(xn, get('self_attn.q_proj.weight'), bias ? get('self_attn.q_proj.bias') : undefined), B, T, nH, hd),
      c.cos,
      c.sin,
      hd,
    );
    const k = applyRope(
      toHeads(linear(xn, get('self_attn.k_proj.weight'), bias ? get('self_attn.k_proj.bias') : undefined), B, T, nKV, hd),
      c.cos,
      c.sin,
      hd,
    );
    const v = toHeads(linear(xn, get('self_attn.v_proj.weight'), bias ? get('self_attn.v_proj.bias') : undefined), B, T, nKV, hd);
    h = tf.add(h, linear(attention(q, k, v, c.mask, B, T, nH, nKV, hd), get('self_attn.o_proj.weight')));
    const xn2 = rmsNorm(h, get('post_attention_layernorm.weight'), eps);
    const gate = linear(xn2, get('mlp.gate_proj.weight'));
    const up = linear(xn2, get('mlp.up_proj.weight'));
    h = tf.add(h, linear(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), get('mlp.down_proj.weight')));
  }
  const final = rmsNorm(h, param(params, 'model.norm.weight'), eps);
  const head = config.tie_word_embeddings ? embed : param(params, 'lm_head.weight');
  return mm(final, tf.transpose(head));
}

function gpt2Forward(config: Gpt2HfConfig, params: Params, ids: tf.Tensor2D, c: ForwardConsts): tf.Tensor2D {
  const [B, T] = ids.shape;
  const d = commonDims(config);
  const H = d.hidden;
  const nH = d.heads;
  const hd = d.headDim;
  const eps = config.layer_norm_epsilon;
  if (T > d.maxPositions) throw new Error(`sequence length ${T} exceeds n_positions ${d.maxPositions}`);
  const wte = param(params, 'wte.weight');
  const pos = tf.slice(param(params, 'wpe.weight'), [0, 0], [T, H]); // [T, H]
  const tok = tf.reshape(embedLookup(tf.oneHot(tf.reshape(ids, [B * T]), d.vocab) as tf.Tensor2D, wte), [B, T, H]);
  let h: tf.Tensor2D = tf.reshape(tf.add(tok, pos), [B * T, H]);
  const conv1d = (x: tf.Tensor2D, name: string): tf.Tensor2D =>
    tf.add(mm(x, param(params, `${name}.weight`)), param(params, `${name}.bias`));
  for (let i = 0; i < d.layers; i++) {
    const p = `h.${i}`;
    const xn = layerNorm(h, param(params, `${p}.ln_1.weight`), param(params, `${p}.ln_1.bias`), eps);
    const qkv = conv1d(xn, `${p}.attn.c_attn`); // [N, 3H]
    const q = toHeads(tf.slice(qkv, [0, 0], [-1, H]), B, T, nH, hd);
    const k = toHeads(tf.slice(qkv, [0, H], [-1, H]), B, T, nH, hd);
    const v = toHeads(tf.slice(qkv, [0, 2 * H], [-1, H]), B, T, nH, hd);
    h = tf.add(h, conv1d(attention(q, k, v, c.mask, B, T, nH, nH, hd), `${p}.attn.c_proj`));
    const xn2 = layerNorm(h, param(params, `${p}.ln_2.weight`), param(params, `${p}.ln_2.bias`), eps);
    h = tf.add(h, conv1d(geluNew(conv1d(xn2, `${p}.mlp.c_fc`)), `${p}.mlp.c_proj`));
  }
  const final = layerNorm(h, param(params, 'ln_f.weight'), param(params, 'ln_f.bias'), eps);
  return mm(final, tf.transpose(wte));
}
