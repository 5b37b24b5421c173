import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { runOracle, runOracleFromDir, onnxRuntimeVersion, type OracleRecord } from '../src/oracle/run.js';
import { EXTERNAL_DATA_ALIGNMENT, GraphBuilder, TensorDataType, attr } from '../src/oracle/onnx-proto.js';
import { fileTensorSource } from '../src/oracle/tensor-source.js';
import { buildModel } from '../src/zoo/build.js';
import { loadCheckpoint } from '../src/zoo/checkpoint.js';
import { findModelSpec } from '../src/zoo/specs.js';
import type { Checkpoint, CheckpointTensor, Gpt2HfConfig, HfConfig, LlamaHfConfig } from '../src/zoo/types.js';
import { gpt2ForwardF64 } from './reference/gpt2-f64.js';
import { forwardF64Detailed } from './reference/llama-f64.js';

// ---- tiny seeded PRNG (mulberry32 + Box–Muller), private to this test ----------------------------
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

interface TinyOpts {
  seed: number;
  modelType: 'llama' | 'qwen2';
  V: number;
  H: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  eps: number;
  theta: number;
  tied: boolean;
  qkvBias: boolean;
  std: number;
}

function tinyCheckpoint(o: TinyOpts): Checkpoint {
  const g = gaussian(rng(o.seed));
  const hd = o.H / o.heads;
  const tensors = new Map<string, CheckpointTensor>();
  const rand = (name: string, shape: number[], std: number, mean = 0): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = mean + std * g();
    tensors.set(name, { shape, data });
  };
  rand('model.embed_tokens.weight', [o.V, o.H], o.std);
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    rand(`${p}.input_layernorm.weight`, [o.H], 0.1, 1);
    rand(`${p}.self_attn.q_proj.weight`, [o.heads * hd, o.H], o.std);
    rand(`${p}.self_attn.k_proj.weight`, [o.kvHeads * hd, o.H], o.std);
    rand(`${p}.self_attn.v_proj.weight`, [o.kvHeads * hd, o.H], o.std);
    if (o.qkvBias) {
      rand(`${p}.self_attn.q_proj.bias`, [o.heads * hd], 0.5);
      rand(`${p}.self_attn.k_proj.bias`, [o.kvHeads * hd], 0.5);
      rand(`${p}.self_attn.v_proj.bias`, [o.kvHeads * hd], 0.5);
    }
    rand(`${p}.self_attn.o_proj.weight`, [o.H, o.heads * hd], o.std);
    rand(`${p}.post_attention_layernorm.weight`, [o.H], 0.1, 1);
    rand(`${p}.mlp.gate_proj.weight`, [o.ffn, o.H], o.std);
    rand(`${p}.mlp.up_proj.weight`, [o.ffn, o.H], o.std);
    rand(`${p}.mlp.down_proj.weight`, [o.H, o.ffn], o.std);
  }
  rand('model.norm.weight', [o.H], 0.1, 1);
  if (!o.tied) rand('lm_head.weight', [o.V, o.H], o.std);
  const config: HfConfig = {
    architectures: [o.modelType === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM'],
    model_type: o.modelType,
    vocab_size: o.V,
    hidden_size: o.H,
    intermediate_size: o.ffn,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    rms_norm_eps: o.eps,
    rope_theta: o.theta,
    max_position_embeddings: 128,
    tie_word_embeddings: o.tied,
    hidden_act: 'silu',
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
    attention_bias: o.qkvBias,
  };
  return { config, tensors };
}

const LLAMA = tinyCheckpoint({
  seed: 1234,
  modelType: 'llama',
  V: 300,
  H: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 96,
  eps: 1e-5,
  theta: 10000,
  tied: true,
  qkvBias: false,
  std: 0.2,
});

const QWEN2 = tinyCheckpoint({
  seed: 98765,
  modelType: 'qwen2',
  V: 300,
  H: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 96,
  eps: 1e-6,
  theta: 1e6,
  tied: false,
  qkvBias: true,
  std: 0.2,
});

const PROMPTS = [
  [1, 17, 250, 3, 99, 42],
  [1, 200, 200, 7, 128, 5, 64],
];
const MAX_NEW = 8;
const REL_TOL = 1e-5;

function argmax(row: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (row[off + j]! > row[off + best]!) best = j;
  return best;
}

/** max over rows of  max|a − ref| / max|ref|  (per-row relative error, worst row). */
function worstRowRel(a: ArrayLike<number>, ref: ArrayLike<number>, rows: number, width: number): number {
  let worst = 0;
  for (let t = 0; t < rows; t++) {
    let maxDiff = 0;
    let maxRef = 0;
    for (let j = 0; j < width; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[t * width + j]! - ref[t * width + j]!));
      maxRef = Math.max(maxRef, Math.abs(ref[t * width + j]!));
    }
    worst = Math.max(worst, maxDiff / maxRef);
  }
  return worst;
}

function greedyF64(ckpt: Checkpoint, prompt: number[], n: number): number[] {
  const ids = [...prompt];
  const V = ckpt.config.vocab_size;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = forwardF64Detailed(ckpt, ids).logits;
    const next = argmax(logits, (ids.length - 1) * V, V);
    out.push(next);
    ids.push(next);
  }
  return out;
}

/** llama.cpp's LlamaModel.permute (HF split-halves rows → GGUF interleaved rows) on every q/k projection. */
function permuteQK(ckpt: Checkpoint): Checkpoint {
  const c = ckpt.config as LlamaHfConfig;
  const hd = c.hidden_size / c.num_attention_heads;
  const tensors = new Map(ckpt.tensors);
  for (const [name, t] of ckpt.tensors) {
    if (!/self_attn\.[qk]_proj\.weight$/.test(name)) continue;
    const cols = t.shape[1]!;
    const rows = t.shape[0]!;
    const out = new Float32Array(t.data.length);
    for (let r = 0; r < rows; r++) {
      const h = Math.floor(r / hd);
      const within = r % hd;
      const s = Math.floor(within / (hd / 2));
      const j = within % (hd / 2);
      const dst = h * hd + 2 * j + s;
      out.set(t.data.subarray(r * cols, (r + 1) * cols), dst * cols);
    }
    tensors.set(name, { shape: t.shape, data: out });
  }
  return { config: c, tensors };
}

describe.each([
  ['llama (tied, GQA 4/2)', LLAMA],
  ['qwen2-like (qkv bias, untied lm_head)', QWEN2],
])('ONNX oracle vs float64 reference: %s', (label, ckpt) => {
  let records: OracleRecord[] = [];

  it('runs the oracle', async () => {
    records = await runOracle(ckpt, PROMPTS, { maxNewTokens: MAX_NEW });
    expect(records).toHaveLength(PROMPTS.length);
  });

  it('records have the documented shapes', () => {
    const { vocab_size: V, hidden_size: H, num_hidden_layers: L } = ckpt.config as LlamaHfConfig;
    for (const [i, r] of records.entries()) {
      expect(r.promptIds).toEqual(PROMPTS[i]);
      expect(r.greedyIds).toHaveLength(MAX_NEW);
      expect(r.ids).toEqual([...PROMPTS[i]!, ...r.greedyIds]);
      expect(r.vocabSize).toBe(V);
      expect(r.hiddenSize).toBe(H);
      expect(r.logits).toBeInstanceOf(Float32Array);
      expect(r.logits.length).toBe(r.ids.length * V);
      expect(r.layerOutputs).toHaveLength(L);
      for (const lo of r.layerOutputs) expect(lo.length).toBe(r.ids.length * H);
      // row t of the final run is the next-token distribution after ids[0..t]: it re-derives the greedy choices
      const P = r.promptIds.length;
      const fromFinal = r.greedyIds.map((_, k) => argmax(r.logits, (P - 1 + k) * V, V));
      expect(fromFinal).toEqual(r.greedyIds);
    }
  });

  it('logits and layer outputs match float64 at every position; greedy ids match', () => {
    const { vocab_size: V, hidden_size: H } = ckpt.config as LlamaHfConfig;
    let worstLogits = 0;
    let worstHidden = 0;
    for (const [i, r] of records.entries()) {
      expect(r.greedyIds).toEqual(greedyF64(ckpt, PROMPTS[i]!, MAX_NEW));
      const ref = forwardF64Detailed(ckpt, r.ids);
      const T = r.ids.length;
      // logits are not flat: the test would be meaningless otherwise
      let maxAbs = 0;
      for (const x of ref.logits) maxAbs = Math.max(maxAbs, Math.abs(x));
      expect(maxAbs).toBeGreaterThan(1);
      for (let t = 0; t < T; t++) {
        const rel = worstRowRel(r.logits.subarray(t * V, (t + 1) * V), ref.logits.subarray(t * V, (t + 1) * V), 1, V);
        expect(rel, `${label} prompt ${i} position ${t}`).toBeLessThanOrEqual(REL_TOL);
        worstLogits = Math.max(worstLogits, rel);
      }
      for (const [l, lo] of r.layerOutputs.entries()) {
        const rel = worstRowRel(lo, ref.hidden[l]!, T, H);
        expect(rel, `${label} prompt ${i} hidden.${l}`).toBeLessThanOrEqual(REL_TOL);
        worstHidden = Math.max(worstHidden, rel);
      }
    }
    console.log(
      `[oracle] ${label}: max per-row rel Δ logits ${worstLogits.toExponential(2)}, hidden ${worstHidden.toExponential(2)} (ORT ${onnxRuntimeVersion()})`,
    );
  });

  it('the comparison discriminates: adjacent-pair RoPE (GGUF-permuted q/k) is far outside the tolerance', () => {
    const r = records[0]!;
    const V = ckpt.config.vocab_size;
    const wrong = forwardF64Detailed(permuteQK(ckpt), r.ids).logits;
    // position 0 is rotation-free; every later position must be clearly off
    const rel = worstRowRel(r.logits.subarray(V), wrong.subarray(V), r.ids.length - 1, V);
    expect(rel).toBeGreaterThan(1000 * REL_TOL);
  });
});

// ---- GPT-2 ---------------------------------------------------------------------------------------

/** A seeded GPT-2 checkpoint in HF names (no `transformer.` prefix), Conv1D weights [in, out]. */
function tinyGpt2(
  seed: number,
  o: { V: number; H: number; layers: number; heads: number; inner: number | null; nPositions: number; eps: number },
): Checkpoint {
  const g = gaussian(rng(seed));
  const F = o.inner ?? 4 * o.H;
  const tensors = new Map<string, CheckpointTensor>();
  const rand = (name: string, shape: number[], std: number, mean = 0): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = mean + std * g();
    tensors.set(name, { shape, data });
  };
  rand('wte.weight', [o.V, o.H], 0.2);
  rand('wpe.weight', [o.nPositions, o.H], 0.1);
  for (let l = 0; l < o.layers; l++) {
    const p = `h.${l}`;
    rand(`${p}.ln_1.weight`, [o.H], 0.1, 1);
    rand(`${p}.ln_1.bias`, [o.H], 0.1);
    rand(`${p}.attn.c_attn.weight`, [o.H, 3 * o.H], 0.2);
    rand(`${p}.attn.c_attn.bias`, [3 * o.H], 0.3);
    rand(`${p}.attn.c_proj.weight`, [o.H, o.H], 0.2);
    rand(`${p}.attn.c_proj.bias`, [o.H], 0.1);
    rand(`${p}.ln_2.weight`, [o.H], 0.1, 1);
    rand(`${p}.ln_2.bias`, [o.H], 0.1);
    rand(`${p}.mlp.c_fc.weight`, [o.H, F], 0.2);
    rand(`${p}.mlp.c_fc.bias`, [F], 0.3);
    rand(`${p}.mlp.c_proj.weight`, [F, o.H], 0.2);
    rand(`${p}.mlp.c_proj.bias`, [o.H], 0.1);
  }
  rand('ln_f.weight', [o.H], 0.1, 1);
  rand('ln_f.bias', [o.H], 0.1);
  const config: Gpt2HfConfig = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: o.V,
    n_embd: o.H,
    n_layer: o.layers,
    n_head: o.heads,
    n_positions: o.nPositions,
    n_inner: o.inner,
    activation_function: 'gelu_new',
    layer_norm_epsilon: o.eps,
    bos_token_id: o.V - 1,
    eos_token_id: o.V - 1,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
  };
  return { config, tensors };
}

const GPT2 = tinyGpt2(4242, { V: 300, H: 64, layers: 2, heads: 4, inner: 160, nPositions: 32, eps: 1e-5 });

/** The same checkpoint with one tensor's data replaced. */
function withTensor(ckpt: Checkpoint, name: string, data: Float32Array): Checkpoint {
  const tensors = new Map(ckpt.tensors);
  const t = ckpt.tensors.get(name)!;
  tensors.set(name, { shape: t.shape, data });
  return { config: ckpt.config, tensors };
}

describe('ONNX oracle vs float64 reference: gpt2 (Conv1D [in,out], learned positions, gelu_new, tied)', () => {
  const V = GPT2.config.vocab_size;
  const H = (GPT2.config as Gpt2HfConfig).n_embd;
  let records: OracleRecord[] = [];

  it('runs the oracle with the documented record shapes', async () => {
    records = await runOracle(GPT2, PROMPTS, { maxNewTokens: MAX_NEW });
    expect(records).toHaveLength(PROMPTS.length);
    for (const [i, r] of records.entries()) {
      expect(r.ids).toEqual([...PROMPTS[i]!, ...r.greedyIds]);
      expect(r.greedyIds).toHaveLength(MAX_NEW);
      expect(r.vocabSize).toBe(V);
      expect(r.hiddenSize).toBe(H);
      expect(r.logits.length).toBe(r.ids.length * V);
      expect(r.layerOutputs).toHaveLength(2);
      for (const lo of r.layerOutputs) expect(lo.length).toBe(r.ids.length * H);
    }
  });

  it('logits and layer outputs match float64 at every position; greedy ids match', () => {
    let worstLogits = 0;
    let worstHidden = 0;
    for (const [i, r] of records.entries()) {
      const ids = [...PROMPTS[i]!];
      for (let k = 0; k < MAX_NEW; k++) ids.push(argmax(gpt2ForwardF64(GPT2, ids).logits, (ids.length - 1) * V, V));
      expect(r.ids, `gpt2 prompt ${i} greedy`).toEqual(ids);
      const ref = gpt2ForwardF64(GPT2, r.ids);
      let maxAbs = 0;
      for (const x of ref.logits) maxAbs = Math.max(maxAbs, Math.abs(x));
      expect(maxAbs).toBeGreaterThan(1);
      for (let t = 0; t < r.ids.length; t++) {
        const rel = worstRowRel(r.logits.subarray(t * V, (t + 1) * V), ref.logits.subarray(t * V, (t + 1) * V), 1, V);
        expect(rel, `gpt2 prompt ${i} position ${t}`).toBeLessThanOrEqual(REL_TOL);
        worstLogits = Math.max(worstLogits, rel);
      }
      for (const [l, lo] of r.layerOutputs.entries()) {
        const rel = worstRowRel(lo, ref.hidden[l]!, r.ids.length, H);
        expect(rel, `gpt2 prompt ${i} hidden.${l}`).toBeLessThanOrEqual(REL_TOL);
        worstHidden = Math.max(worstHidden, rel);
      }
    }
    console.log(
      `[oracle] gpt2: max per-row rel Δ logits ${worstLogits.toExponential(2)}, hidden ${worstHidden.toExponential(2)} (ORT ${onnxRuntimeVersion()})`,
    );
  });

  it('the comparison discriminates: q/k blocks of c_attn swapped, positions off by one', () => {
    const r = records[0]!;
    const cAttn = GPT2.tensors.get('h.0.attn.c_attn.weight')!.data;
    const swapped = new Float32Array(cAttn.length);
    for (let i = 0; i < H; i++) {
      const row = cAttn.subarray(i * 3 * H, (i + 1) * 3 * H);
      swapped.set(row.subarray(H, 2 * H), i * 3 * H);
      swapped.set(row.subarray(0, H), i * 3 * H + H);
      swapped.set(row.subarray(2 * H), i * 3 * H + 2 * H);
    }
    const wpe = GPT2.tensors.get('wpe.weight')!.data;
    const shifted = new Float32Array(wpe.length);
    shifted.set(wpe.subarray(H));
    // position 0 attends only to itself, so a q/k swap is invisible there; later positions must be clearly off
    const T = r.ids.length;
    const qk = gpt2ForwardF64(withTensor(GPT2, 'h.0.attn.c_attn.weight', swapped), r.ids).logits;
    expect(worstRowRel(r.logits.subarray(V), qk.subarray(V), T - 1, V)).toBeGreaterThan(1000 * REL_TOL);
    const pos = gpt2ForwardF64(withTensor(GPT2, 'wpe.weight', shifted), r.ids).logits;
    expect(worstRowRel(r.logits, pos, T, V)).toBeGreaterThan(1000 * REL_TOL);
  });

  it('accepts the attn.bias/masked_bias buffers of older checkpoints, rejects other extra tensors and too-long sequences', async () => {
    const withBuffers: Checkpoint = { config: GPT2.config, tensors: new Map(GPT2.tensors) };
    withBuffers.tensors.set('h.0.attn.bias', { shape: [1, 1, 32, 32], data: new Float32Array(32 * 32).fill(1) });
    withBuffers.tensors.set('h.0.attn.masked_bias', { shape: [], data: new Float32Array([-1e4]) });
    const [a] = await runOracle(withBuffers, [PROMPTS[0]!], { maxNewTokens: 0 });
    expect(Array.from(a!.logits)).toEqual(Array.from(records[0]!.logits.subarray(0, PROMPTS[0]!.length * V)));

    const extra: Checkpoint = { config: GPT2.config, tensors: new Map(GPT2.tensors) };
    extra.tensors.set('h.1.mlp.c_gate.weight', { shape: [H], data: new Float32Array(H) });
    await expect(runOracle(extra, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(/not used/);
    await expect(runOracle(GPT2, [[1, 2]], { maxNewTokens: 31 })).rejects.toThrow(/n_positions/);
  });
});

describe('oracle input validation', () => {
  it('rejects out-of-vocabulary ids and checkpoints with unused tensors', async () => {
    await expect(runOracle(LLAMA, [[1, 300]], { maxNewTokens: 1 })).rejects.toThrow(/outside/);
    const extra: Checkpoint = { config: LLAMA.config, tensors: new Map(LLAMA.tensors) };
    extra.tensors.set('model.layers.0.mlp.gate_proj.bias', { shape: [96], data: new Float32Array(96) });
    await expect(runOracle(extra, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(/not used/);
  });

  it('holds qwen2 and llama to the HF bias conventions', async () => {
    // qwen2: q/k/v biases are part of the architecture, not optional
    const noBias: Checkpoint = { config: QWEN2.config, tensors: new Map(QWEN2.tensors) };
    noBias.tensors.delete('model.layers.1.self_attn.k_proj.bias');
    await expect(runOracle(noBias, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(
      /missing tensor 'model\.layers\.1\.self_attn\.k_proj\.bias'/,
    );
    // qwen2 has no o_proj bias
    const oBias: Checkpoint = { config: QWEN2.config, tensors: new Map(QWEN2.tensors) };
    oBias.tensors.set('model.layers.0.self_attn.o_proj.bias', { shape: [64], data: new Float32Array(64) });
    await expect(runOracle(oBias, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(/not used/);
    // llama without attention_bias must not carry q/k/v biases
    const llamaBias: Checkpoint = { config: LLAMA.config, tensors: new Map(LLAMA.tensors) };
    llamaBias.tensors.set('model.layers.0.self_attn.q_proj.bias', { shape: [64], data: new Float32Array(64) });
    await expect(runOracle(llamaBias, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(/not used/);
    // unsupported RoPE variants are refused, not silently ignored
    const scaled: Checkpoint = {
      config: { ...LLAMA.config, rope_scaling: { rope_type: 'linear', factor: 2 } } as unknown as HfConfig,
      tensors: LLAMA.tensors,
    };
    await expect(runOracle(scaled, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(/rope_scaling/);
  });
});

describe('onnx-proto encoder', () => {
  it('encodes the ModelProto header, negative int64 and float attributes byte-exactly', () => {
    const g = new GraphBuilder('g', 'p');
    const x = g.input('x', TensorDataType.FLOAT, [1, 'T']);
    const y = g.op1('Softmax', [x], { axis: attr.int(-1) }, { output: 'y', name: 'n' });
    g.output(y, TensorDataType.FLOAT, [1, 'T']);
    const b = g.toBytes();
    // ModelProto: field 1 (ir_version) varint 8, field 2 (producer_name) "p"
    expect([...b.subarray(0, 5)]).toEqual([0x08, 8, 0x12, 1, 0x70]);
    // opset_import (field 8) at the end: domain omitted, version 18
    expect([...b.subarray(b.length - 4)]).toEqual([0x42, 2, 0x10, 18]);
    // attribute i = -1 is a 10-byte two's-complement varint
    const hex = Buffer.from(b).toString('hex');
    expect(hex).toContain('18ffffffffffffffffff01');
    // attribute type INT (field 20, varint) = a0 01 02
    expect(hex).toContain('a00102');
  });
});

describe('external data', () => {
  it('streams initializers of at least minBytes to the data file at page-aligned offsets, and onnxruntime reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tmgt-ext-'));
    try {
      const data = join(dir, 'm.onnx.data');
      const g = new GraphBuilder('g', 'p', { externalData: { path: data, location: 'm.onnx.data', minBytes: 32 } });
      const x = g.input('x', TensorDataType.FLOAT, [4, 8]);
      const w = Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(i + 1));
      const b = Float32Array.from({ length: 3 }, (_, i) => i - 1); // 12 bytes: stays inline
      const c = Float32Array.from({ length: 4 * 3 }, (_, i) => i / 7);
      const y = g.op1(
        'Add',
        [g.op1('Add', [g.op1('MatMul', [x, g.initF32('w', [8, 3], w)]), g.initF32('b', [3], b)]), g.initF32('c', [4, 3], c)],
        {},
        { output: 'y' },
      );
      g.output(y, TensorDataType.FLOAT, [4, 3]);
      const model = g.toBytes();
      const hex = Buffer.from(model).toString('hex');
      // data_location EXTERNAL (field 14, varint 1) = 70 01, and the location / offset / length entries
      expect(hex).toContain('7001');
      const text = Buffer.from(model).toString('latin1');
      expect(text).toContain('m.onnx.data');
      expect(text).toContain(`\x0a\x06offset\x12\x04${EXTERNAL_DATA_ALIGNMENT}`);
      // w at 0, c at the next page; the raw bytes of w are not in the model, those of b are
      const file = readFileSync(data);
      expect(file.length).toBe(EXTERNAL_DATA_ALIGNMENT + c.byteLength);
      expect(new Float32Array(file.buffer.slice(file.byteOffset, file.byteOffset + w.byteLength))).toEqual(w);
      expect(Buffer.from(model).includes(Buffer.from(w.buffer))).toBe(false);
      expect(Buffer.from(model).includes(Buffer.from(b.buffer))).toBe(true);

      const modelPath = join(dir, 'm.onnx');
      await import('node:fs').then((fs) => fs.writeFileSync(modelPath, model));
      const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'disabled' });
      const xs = Float32Array.from({ length: 32 }, (_, i) => Math.cos(i));
      const out = await session.run({ x: new ort.Tensor('float32', xs, [4, 8]) });
      await session.release();
      const got = out['y']!.data as Float32Array;
      for (let r = 0; r < 4; r++) {
        for (let j = 0; j < 3; j++) {
          let want = (b[j] as number) + (c[r * 3 + j] as number);
          for (let k = 0; k < 8; k++) want += (xs[r * 8 + k] as number) * (w[k * 3 + j] as number);
          expect(got[r * 3 + j]).toBeCloseTo(want, 5);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the streamed oracle (tensors read one at a time from model.safetensors) equals the in-memory one bit for bit', async () => {
    const dir = await buildModel(findModelSpec('qwen2-tiny'));
    const src = fileTensorSource(dir);
    const ckpt = loadCheckpoint(dir);
    try {
      expect(src.names().sort()).toEqual([...ckpt.tensors.keys()].sort());
      for (const [name, t] of ckpt.tensors) expect(src.get(name)!.data, name).toEqual(t.data);
    } finally {
      src.close();
    }
    const prompts = [[1, 2, 3, 4], [5]];
    const streamed = await runOracleFromDir(dir, prompts, { maxNewTokens: 4 });
    const inMemory = await runOracle(ckpt, prompts, { maxNewTokens: 4 });
    for (const [i, r] of streamed.entries()) {
      expect(r.greedyIds).toEqual(inMemory[i]!.greedyIds);
      expect(Buffer.from(r.logits.buffer).equals(Buffer.from(inMemory[i]!.logits.buffer))).toBe(true);
      expect(r.layerOutputs.map((l) => Array.from(l))).toEqual(inMemory[i]!.layerOutputs.map((l) => Array.from(l)));
    }
  });
});
