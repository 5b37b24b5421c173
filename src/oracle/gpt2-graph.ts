/**
 * ONNX float32 graph for a GPT-2 HF checkpoint (`GPT2LMHeadModel`), built from primitive ai.onnx ops only
 * (opset 18), following the Hugging Face eager forward:
 *
 *   h = wte[ids] + wpe[0..T-1]
 *   per block: h += c_proj(attn(split_qkv(c_attn(ln_1(h)))))
 *              h += mlp.c_proj(gelu_new(mlp.c_fc(ln_2(h))))          → graph output `hidden.{i}`
 *   logits = ln_f(h) @ wteᵀ (tied; Gemm transB on wte as stored)      → graph output `logits`
 *
 * Conv1D weights are stored [in, out] and used as-is: y = x @ W + b. c_attn's output splits into q | k | v of
 * n_embd each, then heads of n_embd / n_head. Attention: softmax(q kᵀ / √hd + causal mask) v, dividing by √hd as
 * HF's GPT-2 does. gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
 *
 * LayerNorm is written out as two-pass primitives (mean, then mean of squared deviations) instead of
 * LayerNormalization-17: onnxruntime's CPU kernel computes the variance in one pass as E[x²] − E[x]² in float32,
 * which loses digits on residual streams whose mean is large against their spread; torch (the reference the
 * oracle stands in for) does not.
 *
 * KV cache as in the llama graph (src/oracle/llama-graph.ts): `past_key_values.{i}.key/.value` [1, n_head, P, hd] in,
 * `present.{i}.key/.value` [1, n_head, P+S, hd] out; the S new tokens take wpe rows P..P+S-1.
 */
import { GraphBuilder, TensorDataType, attr, type ExternalDataOptions } from './onnx-proto.js';
import { causalMaskTable, checkpointTensors, headLogits, kvNames, pastAndMask } from './llama-graph.js';
import { memoryTensorSource, type TensorSource } from './tensor-source.js';
import { commonDims, isGpt2, type Checkpoint } from '../zoo/types.js';

export interface Gpt2GraphOptions {
  /** Longest sequence the graph accepts, past included (rows of wpe used, size of the causal mask); ≤ n_positions. */
  maxPositions: number;
  /** Stream initializers to this file instead of holding them (required past protobuf's 2 GB). */
  externalData?: ExternalDataOptions;
}

/** Non-parameter buffers older GPT-2 checkpoints carry (the causal mask and its fill value); never read. */
const GPT2_BUFFERS = /^h\.\d+\.attn\.(bias|masked_bias)$/;

/** The serialized ModelProto; with `opts.externalData`, large initializers are in that file, referenced by location. */
export function buildGpt2Graph(ckpt: Checkpoint | TensorSource, opts: Gpt2GraphOptions): Uint8Array {
  const src: TensorSource = 'tensors' in ckpt ? memoryTensorSource(ckpt) : ckpt;
  const cfg = src.config;
  if (!isGpt2(cfg)) throw new Error(`buildGpt2Graph: model_type '${cfg.model_type}' needs the llama graph`);
  const { vocab: V, hidden: H, layers: L, heads: nH, ffn, maxPositions: nPositions, tied } = commonDims(cfg);
  const hd = H / nH;
  const maxPos = opts.maxPositions;
  if (!Number.isInteger(hd) || hd <= 0) throw new Error(`n_embd ${H} is not a multiple of n_head ${nH}`);
  if (!Number.isInteger(maxPos) || maxPos < 1) throw new Error(`maxPositions must be a positive integer, got ${maxPos}`);
  if (maxPos > nPositions) throw new Error(`maxPositions ${maxPos} exceeds the model's n_positions ${nPositions} (learned position table)`);
  // Refuse config variants this graph does not implement rather than computing a different function.
  const extra = cfg as unknown as Record<string, unknown>;
  if (cfg.activation_function !== 'gelu_new')
    throw new Error(`activation_function '${String(cfg.activation_function)}' is not supported (gelu_new only)`);
  if (extra['scale_attn_weights'] === false) throw new Error('scale_attn_weights=false is not supported by the oracle graph');
  if (extra['scale_attn_by_inverse_layer_idx'] === true)
    throw new Error('scale_attn_by_inverse_layer_idx is not supported by the oracle graph');
  const eps = cfg.layer_norm_epsilon;

  const { tensor, unused } = checkpointTensors(src);
  const g = new GraphBuilder('gpt2_oracle', undefined, opts.externalData !== undefined ? { externalData: opts.externalData } : {});
  const param = (name: string, shape: readonly number[]): string => g.initF32(name, shape, tensor(name, shape).data);

  // ---- constants -------------------------------------------------------------------------------
  const cAxis0 = g.initI64('c_axis_0', [1], [0]);
  const cAxisLast = g.initI64('c_axis_last', [1], [-1]);
  const cSplitQkv = g.initI64('c_split_qkv', [3], [H, H, H]);
  const cEps = g.initF32('c_eps', [], new Float32Array([eps]));
  const cSqrtHd = g.initF32('c_sqrt_hd', [], new Float32Array([Math.sqrt(hd)]));
  const cHalf = g.initF32('c_half', [], new Float32Array([0.5]));
  const cOne = g.initF32('c_one', [], new Float32Array([1]));
  const cThree = g.initF32('c_three', [], new Float32Array([3]));
  const cGeluCubic = g.initF32('c_gelu_cubic', [], new Float32Array([0.044715]));
  const cGeluScale = g.initF32('c_gelu_scale', [], new Float32Array([Math.sqrt(2 / Math.PI)]));
  const shapeHeads = g.initI64('c_shape_heads', [4], [1, -1, nH, hd]);
  const shapeMerged = g.initI64('c_shape_merged', [3], [1, -1, H]);
  const maskTable = g.initF32('causal_mask', [maxPos, maxPos], causalMaskTable(maxPos));

  // ---- inputs and run-time positions -----------------------------------------------------------
  const ids = g.input('input_ids', TensorDataType.INT64, [1, 'S']);
  const kv = Array.from({ length: L }, (_, i) => kvNames(i));
  for (const n of kv) {
    g.input(n.pastKey, TensorDataType.FLOAT, [1, nH, 'P', hd]);
    g.input(n.pastValue, TensorDataType.FLOAT, [1, nH, 'P', hd]);
  }
  const { past, total, mask } = pastAndMask(g, ids, kv[0]?.pastKey ?? '', maskTable); // mask [S, P+S]

  // ---- helpers ---------------------------------------------------------------------------------
  /** torch LayerNorm: (x − mean) / sqrt(var + eps) · w + b, biased variance over the last axis. */
  const layerNorm = (x: string, prefix: string, output?: string): string => {
    const w = param(`${prefix}.weight`, [H]);
    const b = param(`${prefix}.bias`, [H]);
    const mean = g.op1('ReduceMean', [x, cAxisLast], { keepdims: attr.int(1) });
    const centered = g.op1('Sub', [x, mean]);
    const variance = g.op1('ReduceMean', [g.op1('Mul', [centered, centered]), cAxisLast], { keepdims: attr.int(1) });
    const normed = g.op1('Div', [centered, g.op1('Sqrt', [g.op1('Add', [variance, cEps])])]);
    return g.op1('Add', [g.op1('Mul', [normed, w]), b], {}, output !== undefined ? { output } : {});
  };

  /** HF Conv1D: x @ W + b with W stored [in, out], used as-is. */
  const conv1d = (x: string, prefix: string, inp: number, out: number): string =>
    g.op1('Add', [g.op1('MatMul', [x, param(`${prefix}.weight`, [inp, out])]), param(`${prefix}.bias`, [out])]);

  const geluNew = (x: string): string => {
    const cubic = g.op1('Mul', [g.op1('Pow', [x, cThree]), cGeluCubic]);
    const inner = g.op1('Mul', [g.op1('Add', [x, cubic]), cGeluScale]);
    return g.op1('Mul', [g.op1('Mul', [x, cHalf]), g.op1('Add', [g.op1('Tanh', [inner]), cOne])]);
  };

  const toHeads = (x: string): string => g.op1('Transpose', [g.op1('Reshape', [x, shapeHeads])], { perm: attr.ints([0, 2, 1, 3]) });

  // ---- embeddings ------------------------------------------------------------------------------
  // Tied (the GPT-2 default): the head is wte. A checkpoint that also stores lm_head.weight must agree with it;
  // compared here, while wte is in hand, in a function of its own so that wte is garbage once streamed.
  const wteInit = ((): string => {
    const wte = tensor('wte.weight', [V, H]).data;
    if (tied && src.has('lm_head.weight')) {
      const stored = tensor('lm_head.weight', [V, H]).data;
      if (stored.some((x, j) => !Object.is(x, wte[j])))
        throw new Error('tie_word_embeddings is true but lm_head.weight differs from wte.weight');
    }
    return g.initF32('wte.weight', [V, H], wte);
  })();
  const wpeInit = param('wpe.weight', [nPositions, H]);
  const tokEmb = g.op1('Gather', [wteInit, ids], { axis: attr.int(0) }); // [1, S, H]
  const posEmb = g.op1('Slice', [wpeInit, past, total, cAxis0], {}, { output: 'wpe_S' }); // rows P..P+S-1: [S, H]
  let h = g.op1('Add', [tokEmb, posEmb], {}, { output: 'embeddings' });

  // ---- blocks ----------------------------------------------------------------------------------
  for (let i = 0; i < L; i++) {
    const p = `h.${i}`;
    const n = kvNames(i); // the names kv[i] holds
    const qkv = conv1d(layerNorm(h, `${p}.ln_1`), `${p}.attn.c_attn`, H, 3 * H); // [1, S, 3H]
    const [qf, kf, vf] = g.op('Split', [qkv, cSplitQkv], { axis: attr.int(-1) }, { outputs: 3 }) as [string, string, string];
    const q = toHeads(qf); // [1, nH, S, hd]
    const k = g.op1('Concat', [n.pastKey, toHeads(kf)], { axis: attr.int(2) }, { output: n.presentKey }); // [1, nH, P+S, hd]
    const v = g.op1('Concat', [n.pastValue, toHeads(vf)], { axis: attr.int(2) }, { output: n.presentValue });
    g.output(k, TensorDataType.FLOAT, [1, nH, 'P+S', hd]);
    g.output(v, TensorDataType.FLOAT, [1, nH, 'P+S', hd]);
    const kT = g.op1('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) }); // [1, nH, hd, P+S]
    const scores = g.op1('Add', [g.op1('Div', [g.op1('MatMul', [q, kT]), cSqrtHd]), mask]); // [1, nH, S, P+S]
    const probs = g.op1('Softmax', [scores], { axis: attr.int(-1) });
    const ctx = g.op1('MatMul', [probs, v]); // [1, nH, S, hd]
    const merged = g.op1('Reshape', [g.op1('Transpose', [ctx], { perm: attr.ints([0, 2, 1, 3]) }), shapeMerged]);
    h = g.op1('Add', [h, conv1d(merged, `${p}.attn.c_proj`, H, H)], {}, { output: `residual_attn.${i}` });

    const fc = conv1d(layerNorm(h, `${p}.ln_2`), `${p}.mlp.c_fc`, H, ffn);
    const mlpOut = conv1d(geluNew(fc), `${p}.mlp.c_proj`, ffn, H);
    h = g.op1('Add', [h, mlpOut], {}, { output: `hidden.${i}` });
    g.output(h, TensorDataType.FLOAT, [1, 'S', H]);
  }

  // ---- head ------------------------------------------------------------------------------------
  const final = layerNorm(h, 'ln_f', 'final_norm');
  let head: string;
  if (tied) {
    head = wteInit;
  } else {
    if (!src.has('lm_head.weight')) throw new Error(`checkpoint has no 'lm_head.weight' but tie_word_embeddings is false`);
    head = param('lm_head.weight', [V, H]);
  }
  const logits = headLogits(g, final, head, V, H);
  g.output(logits, TensorDataType.FLOAT, [1, 'S', V]);

  // Refuse checkpoints with parameters this graph would silently ignore.
  const ignored = unused((n) => GPT2_BUFFERS.test(n));
  if (ignored.length > 0) throw new Error(`checkpoint tensors not used by the gpt2 graph: ${ignored.slice(0, 8).join(', ')}`);

  return g.toBytes();
}
