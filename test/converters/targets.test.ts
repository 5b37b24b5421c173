/**
 * The reference converter at every target: each tiny model × target cell passes every check through
 * runCell (the real `tmgt convert` subprocess, the bundled engine, the oracle), each tensor gets the type
 * the real tool would give it (llama-quantize's output rule and K-quant fallbacks included), and the
 * files obey the quantization policy the reference declares.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QuantPolicy } from '../../src/contracts/policy.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { llamaCppTensorOrder, llamaQuantizeFallback, llamaQuantizeTypes, referencePolicy } from '../../src/converters/quant-rules.js';
import { planConversion } from '../../src/converters/reference.js';
import { allTargets, parseTarget, TARGET_IDS, type Target, type TargetId } from '../../src/converters/targets.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readModelFile } from '../../src/formats/read-model.js';
import type { DType, ModelFile } from '../../src/formats/types.js';
import { ALL_SUITES, runCell, suitesFor } from '../../src/matrix/run.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { commonDims } from '../../src/zoo/types.js';

const MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;
const workDir = mkdtempSync(join(tmpdir(), 'tmgt-targets-'));

// ---------------------------------------------------------------------------------------------------
// What each tensor of the zoo must hold, written out per target (not derived from the converter's code).

/** llama.cpp keeps these in F32 at every GGUF target (convert_hf_to_gguf and llama-quantize agree). */
const GGUF_KEPT_F32 = /(_norm\.(weight|bias)|\.bias|^position_embd\.weight)$/;
/** aprender's skip list for the zoo: names with bias/norm, and GPT-2's LayerNorm gains (< 1024 elements). */
const APR_KEPT_F32 = /(bias|layernorm|norm\.weight|ln_(1|2|f)\.weight)$/;

/**
 * The zoo's rows (ne[0] ∈ {96, 128, 224}) divide into 32-blocks but never into 256-blocks, and every
 * model has 2 layers, so llama-quantize's `use_more_bits(i, 2)` is true for layer 1 only.
 */
function expectedType(target: TargetId, name: string, isTied: boolean): DType {
  const t = parseTarget(target);
  if (t.format === 'safetensors') return t.weightDType;
  if (t.format === 'apr') {
    if (t.weightDType === 'APR_Q8' || t.weightDType === 'APR_Q4') return APR_KEPT_F32.test(name) ? 'F32' : t.weightDType;
    return t.weightDType;
  }
  if (GGUF_KEPT_F32.test(name)) return 'F32';
  // The output tensor (token_embd when tied): Q6_K unless the type is Q8_0, Q8_0 when the row does not
  // divide into the type's block; Q6_K itself falls back to Q8_0 on these rows.
  const isHead = name === 'output.weight' || (isTied && name === 'token_embd.weight');
  switch (target) {
    case 'gguf/f32':
    case 'gguf/f16':
    case 'gguf/bf16':
    case 'gguf/q8_0':
      return t.weightDType;
    case 'gguf/q6_k':
      return 'Q8_0';
    case 'gguf/q4_0':
    case 'gguf/q4_1':
    case 'gguf/q5_0':
    case 'gguf/q5_1':
      return isHead ? 'Q8_0' : t.weightDType;
    case 'gguf/q4_k':
      // Q4_K → Q5_0; Q4_K_M's Q6_K for layer 1's attn_v/attn_qkv/ffn_down → Q8_0.
      return isHead || /^blk\.1\.(attn_v|attn_qkv|ffn_down)\.weight$/.test(name) ? 'Q8_0' : 'Q5_0';
    default:
      throw new Error(`no expectation for ${target}`);
  }
}

const FLOAT_TYPES: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

/** Every way the file breaks the policy (F-LAYOUT-CONTRACT-003/-007 as data). */
function policyViolations(file: ModelFile, policy: QuantPolicy): string[] {
  const high = policy.highPrecision.map((p) => new RegExp(p));
  const out: string[] = [];
  for (const t of file.tensors) {
    const isHigh = high.some((r) => r.test(t.name));
    if (t.shape.length < 2 && !isHigh) out.push(`${t.name}: 1-D but not declared high precision`);
    if (isHigh && !policy.highPrecisionDTypes.includes(t.dtype)) out.push(`${t.name}: high precision but ${t.dtype}`);
    if (!isHigh && !policy.quantizedDTypes.includes(t.dtype))
      out.push(`${t.name}: ${t.dtype} not in [${policy.quantizedDTypes.join(', ')}]`);
  }
  const quantized = file.tensors.some((t) => !FLOAT_TYPES.has(t.dtype));
  if (quantized !== policy.expectsQuantized)
    out.push(`expectsQuantized ${policy.expectsQuantized}, file ${quantized ? 'is' : 'is not'} quantized`);
  return out;
}

function readArtifact(path: string): ModelFile {
  const src = new FileByteSource(path);
  try {
    return readModelFile(src);
  } finally {
    src.close();
  }
}

// ---------------------------------------------------------------------------------------------------

describe('llama-quantize emulation (llama_tensor_get_type, not --pure)', () => {
  it('K-quant fallbacks: Q4_K → Q5_0, Q6_K → Q8_0, then F16; a dividing row keeps its type', () => {
    expect(llamaQuantizeFallback('Q4_K', 96)).toBe('Q5_0');
    expect(llamaQuantizeFallback('Q6_K', 224)).toBe('Q8_0');
    expect(llamaQuantizeFallback('Q4_K', 1536)).toBe('Q4_K');
    expect(llamaQuantizeFallback('Q6_K', 1536)).toBe('Q6_K');
    expect(llamaQuantizeFallback('Q4_K', 200)).toBe('F16');
    // No legacy-type fallback exists in llama-quantize (it aborts); the reference writes F16.
    expect(llamaQuantizeFallback('Q8_0', 200)).toBe('F16');
  });

  it('tensor order is llama_model_loader’s: globals first, then layers in numeric order, names byte-wise', () => {
    const names = [
      'blk.10.attn_q.weight',
      'token_embd.weight',
      'blk.2.ffn_down.weight',
      'blk.2.attn_k.weight',
      'output_norm.weight',
      'output.weight',
    ];
    expect([...names].sort(llamaCppTensorOrder)).toEqual([
      'output.weight',
      'output_norm.weight',
      'token_embd.weight',
      'blk.2.attn_k.weight',
      'blk.2.ffn_down.weight',
      'blk.10.attn_q.weight',
    ]);
  });

  it('a SmolLM-shaped model at Q4_K_M: 576-wide rows fall back, ffn_down (1536) stays K-quant, use_more_bits picks Q6_K', () => {
    const layers = 30;
    const tensors: { name: string; shape: number[]; current: DType }[] = [
      { name: 'token_embd.weight', shape: [49152, 576], current: 'F32' },
      { name: 'output_norm.weight', shape: [576], current: 'F32' },
    ];
    for (let i = 0; i < layers; i++) {
      for (const [n, shape] of [
        ['attn_q', [576, 576]],
        ['attn_k', [192, 576]],
        ['attn_v', [192, 576]],
        ['attn_output', [576, 576]],
        ['ffn_gate', [1536, 576]],
        ['ffn_up', [1536, 576]],
        ['ffn_down', [576, 1536]],
      ] as const) {
        tensors.push({ name: `blk.${i}.${n}.weight`, shape: [...shape], current: 'F32' });
      }
      tensors.push({ name: `blk.${i}.attn_norm.weight`, shape: [576], current: 'F32' });
    }
    const types = llamaQuantizeTypes(tensors, 15, layers);
    // Tied: token_embd takes the output rule; 576 % 256 ≠ 0 → Q8_0.
    expect(types.get('token_embd.weight')).toBe('Q8_0');
    expect(types.get('output_norm.weight')).toBe('F32');
    expect(types.get('blk.5.attn_q.weight')).toBe('Q5_0');
    expect(types.get('blk.5.ffn_gate.weight')).toBe('Q5_0');
    // use_more_bits(i, 30): i < 3, i ≥ 26, or (i − 3) % 3 == 2.
    for (const [i, more] of [
      [0, true],
      [2, true],
      [3, false],
      [5, true],
      [6, false],
      [26, true],
      [29, true],
    ] as const) {
      expect(types.get(`blk.${i}.ffn_down.weight`), `ffn_down ${i}`).toBe(more ? 'Q6_K' : 'Q4_K');
      expect(types.get(`blk.${i}.attn_v.weight`), `attn_v ${i}`).toBe(more ? 'Q8_0' : 'Q5_0');
    }
  });

  it('an untied model: output.weight takes the output rule, token_embd the default type', () => {
    const tensors = [
      { name: 'token_embd.weight', shape: [384, 128], current: 'F32' as DType },
      { name: 'output.weight', shape: [384, 128], current: 'F32' as DType },
      { name: 'blk.0.attn_q.bias', shape: [128], current: 'F32' as DType },
    ];
    expect(Object.fromEntries(llamaQuantizeTypes(tensors, 2, 1))).toEqual({
      'token_embd.weight': 'Q4_0',
      'output.weight': 'Q8_0',
      'blk.0.attn_q.bias': 'F32',
    });
    expect(Object.fromEntries(llamaQuantizeTypes(tensors, 7, 1))).toEqual({
      'token_embd.weight': 'Q8_0',
      'output.weight': 'Q8_0',
      'blk.0.attn_q.bias': 'F32',
    });
  });
});

describe('per-target storage types of the reference conversion', () => {
  for (const model of MODELS) {
    it(`${model}: every tensor at every target holds the type the real tool writes, within the declared policy`, async () => {
      const sourceDir = await buildModel(findModelSpec(model));
      const ckpt = loadCheckpoint(sourceDir);
      const isTied = commonDims(ckpt.config).tied;
      for (const target of allTargets()) {
        const plan = planConversion(ckpt, sourceDir, target);
        for (const t of plan.tensors) expect(t.dtype, `${target.id} ${t.name}`).toBe(expectedType(target.id, t.name, isTied));
        if (target.producer === 'llama-quantize')
          expect(plan.tensors.map((t) => t.name)).toEqual(plan.tensors.map((t) => t.name).sort(llamaCppTensorOrder));
      }
    });
  }

  it('referencePolicy lists the target type and exactly the documented fallbacks', () => {
    const q = (id: TargetId) => referencePolicy(parseTarget(id));
    expect(q('gguf/q4_k').quantizedDTypes).toEqual(['Q4_K', 'Q6_K', 'Q5_0', 'Q8_0', 'F16']);
    expect(q('gguf/q6_k').quantizedDTypes).toEqual(['Q6_K', 'Q8_0', 'F16']);
    expect(q('gguf/q4_0').quantizedDTypes).toEqual(['Q4_0', 'Q6_K', 'Q8_0', 'F16']);
    expect(q('gguf/q8_0').quantizedDTypes).toEqual(['Q8_0', 'F16']);
    expect(q('apr/int4')).toMatchObject({ quantizedDTypes: ['APR_Q4'], highPrecisionDTypes: ['F32'], expectsQuantized: true });
    for (const id of ['gguf/f32', 'gguf/f16', 'gguf/bf16', 'apr/f32', 'apr/f16', 'safetensors/f16', 'safetensors/bf16'] as const)
      expect(q(id).expectsQuantized, id).toBe(false);
  });
});

describe('reference converter × every target through runCell (in-process): zero verdicts', () => {
  const opts = { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: 32, converterTimeoutMs: 120_000, suites: ALL_SUITES };
  const cells = MODELS.flatMap((model) => TARGET_IDS.map((id) => [model, parseTarget(id)] as [string, Target]));
  for (const [model, target] of cells) {
    it(`${model} × ${target.id}`, async () => {
      const r = await runCell({ converter: 'reference', model, target, engine: 'bundled' }, opts);
      const failing = r.checks.flatMap((c) => c.verdicts);
      expect(failing, JSON.stringify(failing, null, 1)).toEqual([]);
      expect(new Set(r.checks.map((c) => c.suite))).toEqual(new Set(suitesFor(target)));
      expect(r.checks.filter((c) => c.suite === 'logits')).toHaveLength(DEFAULT_PROMPTS.length);
      if (r.status !== 'done' || r.artifact === undefined) throw new Error('no artifact');
      const file = readArtifact(r.artifact);
      expect(file.format).toBe(target.format);
      expect(policyViolations(file, referencePolicy(target))).toEqual([]);
      if (target.format === 'gguf') expect(Number(file.metadata.get('general.file_type'))).toBe(target.fileType);
    }, 60_000);
  }
});
