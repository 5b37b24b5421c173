/**
 * ONNX float32 graph for a LLaMA-family (llama, qwen2) HF checkpoint, built from primitive ai.onnx ops only
 * (opset 18), following the Hugging Face eager forward (`LlamaForCausalLM` / `Qwen2ForCausalLM`):
 *
 *   h = embed[ids]
 *   per layer: h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(rms(h))), v_proj(rms(h))))
 *              h += down(silu(gate(rms(h))) * up(rms(h)))            → graph output `hidden.{i}`
 *   logits = rms(h) @ (lm_head or embed)^T                            → graph output `logits`
 *
 * RMSNorm: x / sqrt(mean(x²) + eps) * w. RoPE: HF rotate_half (split halves), cos/sin tables computed in float32
 * the way HF's LlamaRotaryEmbedding does. GQA: query head h reads kv head h // n_rep. Attention: softmax(q kᵀ / √hd
 * + causal mask) v with the mask an additive [maxPos, maxPos] initializer (0 on/below the diagonal, float32 min above).
 * Biases as the HF modules have them: qwen2 q/k/v always (never o_proj); llama q/k/v/o iff `attention_bias`. RoPE base
 * is `rope_theta` from the config; the head is `lm_head.weight` unless `tie_word_embeddings`.
 *
 * KV cache (as optimum exports decoder-with-past): inputs `input_ids` [1, S] and, per layer, `past_key_values.{i}.key`
 * / `.value` [1, n_kv, P, hd] (P = 0 for the prompt); outputs `present.{i}.key` / `.value` [1, n_kv, P+S, hd] (keys
 * after RoPE, before repeat_kv). The S new tokens sit at positions P..P+S-1: their RoPE rows and causal-mask rows
 * [P, P+S) × columns [0, P+S) are sliced from the tables, so a prompt is one run and each greedy step one more.
 */
import { GraphBuilder, TensorDataType, attr, type ExternalDataOptions } from './onnx-proto.js';
import { memoryTensorSource, type TensorSource } from './tensor-source.js';
import { hasQkvBias, headDim, isGpt2, type Checkpoint, type CheckpointTensor } from '../zoo/types.js';

export interface LlamaGraphOptions {
  /** Longest sequence the graph accepts, past included (size of the RoPE tables and the causal mask). */
  maxPositions: number;
  /** Stream initializers to this file instead of holding them (required past protobuf's 2 GB). */
  externalData?: ExternalDataOptions;
}

/** Graph input names of layer i's cache, and the outputs that hand it on to the next step. */
export function kvNames(layer: number): { pastKey: string; pastValue: string; presentKey: string; presentValue: string } {
  return {
    pastKey: `past_key_values.${layer}.key`,
    pastValue: `past_key_values.${layer}.value`,
    presentKey: `present.${layer}.key`,
    presentValue: `present.${layer}.value`,
  };
}

/**
 * The run-time positions of the new tokens: past length P (from the first past key's dim 2), S, P+S, and the causal
 * mask rows of the new tokens sliced from the [maxPos, maxPos] table: [S, P+S].
 */
export function pastAndMask(
  g: GraphBuilder,
  ids: string,
  pastKey0: string,
  maskTable: string,
): { past: string; total: string; mask: string } {
  const sLen = g.op1('Shape', [ids], { start: attr.int(1), end: attr.int(2) }, { output: 'seq_len' }); // [S]
  const past = g.op1('Shape', [pastKey0], { start: attr.int(2), end: attr.int(3) }, { output: 'past_len' }); // [P]
  const total = g.op1('Add', [past, sLen], {}, { output: 'total_len' }); // [P+S]
  const starts = g.op1('Concat', [past, g.initI64('c_zero_col', [1], [0])], { axis: attr.int(0) }, { output: 'mask_starts' });
  const ends = g.op1('Concat', [total, total], { axis: attr.int(0) }, { output: 'mask_ends' });
  const mask = g.op1('Slice', [maskTable, starts, ends, g.initI64('c_mask_axes', [2], [0, 1])], {}, { output: 'mask_S_total' });
  return { past, total, mask };
}

/** Most negative finite float32, the value HF uses for masked attention scores. */
export const F32_MIN = -3.4028234663852886e38;

/** Additive causal mask [maxPositions, maxPositions]: 0 on and below the diagonal, F32_MIN above. */
export function causalMaskTable(maxPositions: number): Float32Array {
  const mask = new Float32Array(maxPositions * maxPositions);
  for (let i = 0; i < maxPositions; i++) for (let j = i + 1; j < maxPositions; j++) mask[i * maxPositions + j] = F32_MIN;
  return mask;
}

/**
 * RoPE cos/sin tables [maxPositions, headDim] exactly as HF computes them in float32:
 * inv_freq = 1 / base^(arange(0, d, 2).float() / d); freqs = pos * inv_freq; emb = cat(freqs, freqs).
 */
export function hfRopeTables(theta: number, dim: number, maxPositions: number): { cos: Float32Array; sin: Float32Array } {
  const half = dim / 2;
  const f = Math.fround;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = f(f(2 * i) / dim);
    invFreq[i] = f(1 / f(Math.pow(f(theta), exponent)));
  }
  const cos = new Float32Array(maxPositions * dim);
  const sin = new Float32Array(maxPositions * dim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = f(p * (invFreq[i] as number));
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * dim + i] = c;
      cos[p * dim + half + i] = c;
      sin[p * dim + i] = s;
      sin[p * dim + half + i] = s;
    }
  }
  return { cos, sin };
}

/** Tile edge of the blocked transpose: a 32×32 f32 tile of source and destination (8 KiB) stays in L1. */
const TRANSPOSE_TILE = 32;

/** [rows, cols] row-major → [cols, rows] row-major, tile by tile (a row-by-row loop misses cache on every store). */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r0 = 0; r0 < rows; r0 += TRANSPOSE_TILE) {
    const r1 = Math.min(rows, r0 + TRANSPOSE_TILE);
    for (let c0 = 0; c0 < cols; c0 += TRANSPOSE_TILE) {
      const c1 = Math.min(cols, c0 + TRANSPOSE_TILE);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = data[base + c] as number;
      }
    }
  }
  return out;
}

/**
 * logits [1, T, V] = x [1, T, H] @ headᵀ with the head initializer [V, H] as stored (Gemm transB), so a tied head
 * shares the embedding's initializer instead of adding a transposed copy: for Qwen2-0.5B that copy alone (545 MB)
 * would push the model past protobuf's 2 GB limit.
 */
export function headLogits(g: GraphBuilder, x: string, head: string, vocab: number, hidden: number): string {
  const rows = g.op1('Reshape', [x, g.initI64(g.fresh('c_shape_rows'), [2], [-1, hidden])]); // [T, H]
  const logits2d = g.op1('Gemm', [rows, head], { transB: attr.int(1) }); // [T, V]
  return g.op1('Reshape', [logits2d, g.initI64(g.fresh('c_shape_logits'), [3], [1, -1, vocab])], {}, { output: 'logits' });
}

/**
 * Shape-checked access to a checkpoint's tensors for a graph builder, remembering which were used so the
 * builder can refuse a checkpoint carrying tensors its graph would silently ignore.
 */
export function checkpointTensors(src: TensorSource): {
  tensor: (name: string, shape: readonly number[]) => CheckpointTensor;
  unused: (ignore: (name: string) => boolean) => string[];
} {
  const used = new Set<string>();
  const tensor = (name: string, shape: readonly number[]): CheckpointTensor => {
    const t = src.get(name);
    if (t === undefined) throw new Error(`checkpoint is missing tensor '${name}'`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`tensor '${name}' has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`);
    }
    if (t.data.length !== shape.reduce((a, b) => a * b, 1))
      throw new Error(`tensor '${name}' has ${t.data.length} values for shape [${shape.join(',')}]`);
    used.add(name);
    return t;
  };
  const unused = (ignore: (name: string) => boolean): string[] => src.names().filter((n) => !used.has(n) && !ignore(n));
  return { tensor, unused };
}
/** The serialized ModelProto; with `opts.externalData`, large initializers are in that file, referenced by location. */
export function buildLlamaGraph(ckpt: Checkpoint | TensorSource, opts: LlamaGraphOptions): Uint8Array {
  const src: TensorSource = 'tensors' in ckpt ? memoryTensorSource(ckpt) : ckpt;
  const cfg = src.config;
  if (isGpt2(cfg)) throw new Error('buildLlamaGraph: a gpt2 checkpoint needs the GPT-2 graph');
  const V = cfg.vocab_size;
  const H = cfg.hidden_size;
  const L = cfg.num_hidden_layers;
  const nH = cfg.num_attention_heads;
  const nKV = cfg.num_key_value_heads;
  const hd = headDim(cfg);
  const ffn = cfg.intermediate_size;
  const maxPos = opts.maxPositions;
  if (!Number.isInteger(hd) || hd <= 0 || hd % 2 !== 0) throw new Error(`head_dim must be a positive even integer, got ${hd}`);
  if (nH % nKV !== 0) throw new Error(`num_attention_heads ${nH} is not a multiple of num_key_value_heads ${nKV}`);
  if (!Number.isInteger(maxPos) || maxPos < 1) throw new Error(`maxPositions must be a positive integer, got ${maxPos}`);
  // Refuse config features this graph does not implement rather than computing a different function.
  const extra = cfg as unknown as Record<string, unknown>;
  if (extra['rope_scaling'] !== undefined && extra['rope_scaling'] !== null) {
    throw new Error(`rope_scaling ${JSON.stringify(extra['rope_scaling'])} is not supported by the oracle graph`);
  }
  if (extra['use_sliding_window'] === true) throw new Error('use_sliding_window is not supported by the oracle graph');
  if (extra['mlp_bias'] === true) throw new Error('mlp_bias is not supported by the oracle graph');
  if (cfg.hidden_act !== 'silu') throw new Error(`hidden_act '${String(cfg.hidden_act)}' is not supported (silu only)`);
  const nRep = nH / nKV;
  // HF: Qwen2Attention has q/k/v biases always and no o_proj bias; LlamaAttention has q/k/v/o biases iff attention_bias.
  const qkvBias = hasQkvBias(cfg);
  const oBias = cfg.model_type === 'llama' && cfg.attention_bias === true;

  const { tensor, unused } = checkpointTensors(src);
  const g = new GraphBuilder('llama_oracle', undefined, opts.externalData !== undefined ? { externalData: opts.externalData } : {});

  // ---- constants -------------------------------------------------------------------------------
  const cZero1 = g.initI64('c_zero_1', [1], [0]);
  const cAxis0 = g.initI64('c_axis_0', [1], [0]);
  const cAxisLast = g.initI64('c_axis_last', [1], [-1]);
  const cAxis3 = g.initI64('c_axis_3', [1], [3]);
  const cHalf = g.initI64('c_half', [1], [hd / 2]);
  const cHd = g.initI64('c_hd', [1], [hd]);
  const cTwo = g.initF32('c_two', [], new Float32Array([2]));
  const cEps = g.initF32('c_eps', [], new Float32Array([cfg.rms_norm_eps]));
  const cScale = g.initF32('c_scale', [], new Float32Array([1 / Math.sqrt(hd)]));
  const shapeQ = g.initI64('c_shape_q', [4], [1, -1, nH, hd]);
  const shapeKV = g.initI64('c_shape_kv', [4], [1, -1, nKV, hd]);
  const shapeAttnOut = g.initI64('c_shape_attn_out', [3], [1, -1, nH * hd]);
  const kvIndex = g.initI64(
    'c_kv_head_of_q_head',
    [nH],
    Array.from({ length: nH }, (_, h) => Math.floor(h / nRep)),
  );

  const rope = hfRopeTables(cfg.rope_theta, hd, maxPos);
  const cosTable = g.initF32('rope_cos', [maxPos, hd], rope.cos);
  const sinTable = g.initF32('rope_sin', [maxPos, hd], rope.sin);

  const maskTable = g.initF32('causal_mask', [maxPos, maxPos], causalMaskTable(maxPos));

  // ---- inputs and run-time positions -----------------------------------------------------------
  const ids = g.input('input_ids', TensorDataType.INT64, [1, 'S']);
  const kv = Array.from({ length: L }, (_, i) => kvNames(i));
  for (const n of kv) {
    g.input(n.pastKey, TensorDataType.FLOAT, [1, nKV, 'P', hd]);
    g.input(n.pastValue, TensorDataType.FLOAT, [1, nKV, 'P', hd]);
  }
  const { past, total, mask } = pastAndMask(g, ids, kv[0]?.pastKey ?? '', maskTable); // mask [S, P+S]
  const cos = g.op1('Slice', [cosTable, past, total, cAxis0], {}, { output: 'cos_S' }); // rows P..P+S-1: [S, hd]
  const sin = g.op1('Slice', [sinTable, past, total, cAxis0], {}, { output: 'sin_S' });

  // ---- helpers ---------------------------------------------------------------------------------
  const weightT = (name: string, out: number, inp: number): string =>
    g.initF32(`${name}.T`, [inp, out], transpose2d(tensor(name, [out, inp]).data, out, inp));

  /**
   * x @ Wᵀ (+ b). A bias is required exactly where the HF module has one (`hasBias`), so a checkpoint missing an
   * expected bias fails here and one carrying an unexpected bias fails the unused-tensor check below.
   */
  const linear = (x: string, prefix: string, out: number, inp: number, hasBias: boolean): string => {
    const y = g.op1('MatMul', [x, weightT(`${prefix}.weight`, out, inp)]);
    if (!hasBias) return y;
    return g.op1('Add', [y, g.initF32(`${prefix}.bias`, [out], tensor(`${prefix}.bias`, [out]).data)]);
  };

  const rmsNorm = (x: string, weightName: string, output?: string): string => {
    const w = g.initF32(weightName, [H], tensor(weightName, [H]).data);
    const sq = g.op1('Pow', [x, cTwo]);
    const mean = g.op1('ReduceMean', [sq, cAxisLast], { keepdims: attr.int(1) });
    const denom = g.op1('Sqrt', [g.op1('Add', [mean, cEps])]);
    const normed = g.op1('Div', [x, denom]);
    return g.op1('Mul', [normed, w], {}, output !== undefined ? { output } : {});
  };

  /** HF apply_rotary_pos_emb on [1, heads, T, hd]: x*cos + rotate_half(x)*sin, rotate_half = cat(-x2, x1). */
  const applyRope = (x: string): string => {
    const x1 = g.op1('Slice', [x, cZero1, cHalf, cAxis3]);
    const x2 = g.op1('Slice', [x, cHalf, cHd, cAxis3]);
    const rotated = g.op1('Concat', [g.op1('Neg', [x2]), x1], { axis: attr.int(-1) });
    return g.op1('Add', [g.op1('Mul', [x, cos]), g.op1('Mul', [rotated, sin])]);
  };

  const toHeads = (x: string, shape: string): string =>
    g.op1('Transpose', [g.op1('Reshape', [x, shape])], { perm: attr.ints([0, 2, 1, 3]) });

  // ---- embedding -------------------------------------------------------------------------------
  // Tied (HF tie_weights): the head is the embedding. A checkpoint that also stores lm_head.weight must agree with it;
  // compared here, while the embedding is in hand. In a function of its own so that the embedding (0.9 GB at 1.5B)
  // is garbage once streamed, not held by this scope for the rest of the build.
  const embedInit = ((): string => {
    const embed = tensor('model.embed_tokens.weight', [V, H]).data;
    if (cfg.tie_word_embeddings && src.has('lm_head.weight')) {
      const stored = tensor('lm_head.weight', [V, H]).data;
      if (stored.some((x, i) => !Object.is(x, embed[i])))
        throw new Error(`tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight`);
    }
    return g.initF32('model.embed_tokens.weight', [V, H], embed);
  })();
  let h = g.op1('Gather', [embedInit, ids], { axis: attr.int(0) }); // [1, S, H]

  // ---- decoder blocks --------------------------------------------------------------------------
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    const n = kvNames(i); // the names kv[i] holds
    const xn = rmsNorm(h, `${p}.input_layernorm.weight`);
    const q = applyRope(toHeads(linear(xn, `${p}.self_attn.q_proj`, nH * hd, H, qkvBias), shapeQ)); // [1, nH, S, hd]
    const kNew = applyRope(toHeads(linear(xn, `${p}.self_attn.k_proj`, nKV * hd, H, qkvBias), shapeKV)); // [1, nKV, S, hd]
    const vNew = toHeads(linear(xn, `${p}.self_attn.v_proj`, nKV * hd, H, qkvBias), shapeKV);
    const k = g.op1('Concat', [n.pastKey, kNew], { axis: attr.int(2) }, { output: n.presentKey }); // [1, nKV, P+S, hd]
    const v = g.op1('Concat', [n.pastValue, vNew], { axis: attr.int(2) }, { output: n.presentValue });
    g.output(k, TensorDataType.FLOAT, [1, nKV, 'P+S', hd]);
    g.output(v, TensorDataType.FLOAT, [1, nKV, 'P+S', hd]);
    // repeat_kv: query head h uses kv head h // n_rep
    const kRep = nRep === 1 ? k : g.op1('Gather', [k, kvIndex], { axis: attr.int(1) });
    const vRep = nRep === 1 ? v : g.op1('Gather', [v, kvIndex], { axis: attr.int(1) });
    const kT = g.op1('Transpose', [kRep], { perm: attr.ints([0, 1, 3, 2]) });
    const scores = g.op1('Add', [g.op1('Mul', [g.op1('MatMul', [q, kT]), cScale]), mask]); // [1, nH, S, P+S]
    const probs = g.op1('Softmax', [scores], { axis: attr.int(-1) });
    const ctx = g.op1('MatMul', [probs, vRep]); // [1, nH, S, hd]
    const merged = g.op1('Reshape', [g.op1('Transpose', [ctx], { perm: attr.ints([0, 2, 1, 3]) }), shapeAttnOut]);
    const attnOut = linear(merged, `${p}.self_attn.o_proj`, H, nH * hd, oBias);
    h = g.op1('Add', [h, attnOut], {}, { output: `residual_attn.${i}` });

    const xn2 = rmsNorm(h, `${p}.post_attention_layernorm.weight`);
    const gate = linear(xn2, `${p}.mlp.gate_proj`, ffn, H, false);
    const up = linear(xn2, `${p}.mlp.up_proj`, ffn, H, false);
    const act = g.op1('Mul', [g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), up]);
    const mlpOut = linear(act, `${p}.mlp.down_proj`, H, ffn, false);
    h = g.op1('Add', [h, mlpOut], {}, { output: `hidden.${i}` });
    g.output(h, TensorDataType.FLOAT, [1, 'S', H]);
  }

  // ---- head ------------------------------------------------------------------------------------
  const final = rmsNorm(h, 'model.norm.weight', 'final_norm');
  let head: string;
  if (cfg.tie_word_embeddings) {
    head = embedInit;
  } else {
    if (!src.has('lm_head.weight')) throw new Error(`checkpoint has no 'lm_head.weight' but tie_word_embeddings is false`);
    head = g.initF32('lm_head.weight', [V, H], tensor('lm_head.weight', [V, H]).data);
  }
  const logits = headLogits(g, final, head, V, H);
  g.output(logits, TensorDataType.FLOAT, [1, 'S', V]);

  // Refuse checkpoints with parameters this graph would silently ignore.
  const ignored = unused((n) => n.endsWith('.rotary_emb.inv_freq'));
  if (ignored.length > 0) throw new Error(`checkpoint tensors not used by the llama graph: ${ignored.slice(0, 8).join(', ')}`);

  return g.toBytes();
}
