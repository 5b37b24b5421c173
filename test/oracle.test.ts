import { describe, expect, it } from 'vitest';
import { runOracle, onnxRuntimeVersion, type OracleRecord } from '../src/oracle/run.js';
import { GraphBuilder, TensorDataType, attr } from '../src/oracle/onnx-proto.js';
import type { Checkpoint, CheckpointTensor, HfConfig, LlamaHfConfig } from '../src/zoo/types.js';
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
    console.log(`[oracle] ${label}: max per-row rel Δ logits ${worstLogits.toExponential(2)}, hidden ${worstHidden.toExponential(2)} (ORT ${onnxRuntimeVersion()})`);
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

describe('oracle input validation', () => {
  it('rejects out-of-vocabulary ids and checkpoints with unused tensors', async () => {
    await expect(runOracle(LLAMA, [[1, 300]], { maxNewTokens: 1 })).rejects.toThrow(/outside/);
    const extra: Checkpoint = { config: LLAMA.config, tensors: new Map(LLAMA.tensors) };
    extra.tensors.set('model.layers.0.mlp.gate_proj.bias', { shape: [96], data: new Float32Array(96) });
    await expect(runOracle(extra, [[1, 2]], { maxNewTokens: 1 })).rejects.toThrow(/not used/);
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
