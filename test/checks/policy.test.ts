import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConvertedFiles, roleOf, tensorOf, tensorsOf, ZOO_MODELS, type Converted, type Mutate } from '../helpers/converted.js';
import type { CheckResult, VerdictCode } from '../../src/checks/codes.js';
import { checkPolicy, isQuantizedDType } from '../../src/checks/policy.js';
import type { QuantPolicy } from '../../src/contracts/policy.js';
import { referencePolicy } from '../../src/converters/quant-rules.js';
import { TARGET_IDS, type Target } from '../../src/converters/targets.js';

const MODELS = ZOO_MODELS;
type Model = (typeof MODELS)[number];
const files = new ConvertedFiles('tmgt-policy-');
beforeAll(() => files.load(MODELS), 120_000);
afterAll(() => files.close());
const convert = (model: Model, targetId: string, mutate?: Mutate): Converted => files.convert(model, targetId, mutate);

const codes = (r: CheckResult): VerdictCode[] => [...new Set(r.verdicts.map((v) => v.code))].sort();

describe('checkPolicy on the reference converter', () => {
  for (const model of MODELS) {
    it(`${model}: every target holds the reference's own declared policy, 1-D tensors bit-exact`, () => {
      for (const id of TARGET_IDS) {
        const c = convert(model, id);
        const r = checkPolicy(c.file, referencePolicy(c.target), c.expected, c.src);
        expect({ id, verdicts: r.verdicts }).toEqual({ id, verdicts: [] });
        expect(r.metrics?.['oneDTensors']).toBeGreaterThan(0);
        // Norms and biases are F32 everywhere except the all-f16/bf16 targets, where they are checked by dtype only.
        if (c.file.tensors.some((t) => t.shape.length === 1 && t.dtype === 'F32'))
          expect(r.metrics?.['oneDBitExactChecked']).toBeGreaterThan(0);
        if (referencePolicy(c.target).expectsQuantized) expect(c.file.tensors.some((t) => isQuantizedDType(t.dtype))).toBe(true);
      }
    });
  }
});

const NORM = /_norm\.weight$/;

interface PolicyMutant {
  name: string;
  model: Model;
  target: string;
  mutate?: Mutate;
  /** The converter's declared policy; default: the reference's for the target. */
  policy?: (target: Target) => QuantPolicy;
  expected: VerdictCode[];
  message?: RegExp;
  /** The verdict is about the file, not one tensor. */
  isFileLevel?: boolean;
}

const POLICY_MUTANTS: readonly PolicyMutant[] = [
  {
    name: 'RMSNorm gains quantized to Q8_0: 96 % 32 = 0 lets them through (sd.cpp PR 1861)',
    model: 'llama-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => {
      for (const t of tensorsOf(p)) if (NORM.test(roleOf(t))) t.dtype = 'Q8_0';
    },
    expected: ['F-LAYOUT-CONTRACT-003'],
    message: /1-D tensor stored as Q8_0: norms and biases must stay in F32/,
  },
  {
    name: 'GPT-2 LayerNorm biases quantized to Q4_0',
    model: 'gpt2-tiny',
    target: 'gguf/q4_0',
    mutate: (p) => void (tensorOf(p, 'blk.0.attn_norm.bias').dtype = 'Q4_0'),
    expected: ['F-LAYOUT-CONTRACT-003'],
  },
  {
    name: 'a norm gain altered in F32 (value rescaled by 1.0001)',
    model: 'qwen2-tiny',
    target: 'gguf/f32',
    mutate: (p) => {
      const t = tensorOf(p, 'output_norm.weight');
      t.values = t.values.map((v) => v * 1.0001);
    },
    expected: ['F-LAYOUT-CONTRACT-003'],
    message: /1-D tensor altered: \d+ of 128 F32 values differ from the source/,
  },
  {
    name: 'a qkv bias altered in one element (APR keeps biases F32)',
    model: 'qwen2-tiny',
    target: 'apr/int8',
    mutate: (p) => {
      const t = tensorOf(p, 'blk.1.attn_k.bias');
      const v = Float32Array.from(t.values);
      v[3] = (v[3] as number) + 1e-3;
      t.values = v;
    },
    expected: ['F-LAYOUT-CONTRACT-003'],
    message: /first at \[3\]/,
  },
  {
    name: 'lm_head quantized although the converter promises to keep it high precision (paiml/aprender#234)',
    model: 'qwen2-tiny',
    target: 'gguf/q8_0',
    policy: (t) => {
      const base = referencePolicy(t);
      return { ...base, highPrecision: [...base.highPrecision, '^output\\.weight$'], highPrecisionDTypes: ['F32', 'F16'] };
    },
    expected: ['F-LAYOUT-CONTRACT-007'],
    message: /stored as Q8_0, but the converter's policy keeps this tensor in F32, F16/,
  },
  {
    name: 'lm_head quantized in an f16 conversion',
    model: 'qwen2-tiny',
    target: 'gguf/f16',
    mutate: (p) => void (tensorOf(p, 'output.weight').dtype = 'Q8_0'),
    expected: ['F-LAYOUT-CONTRACT-007'],
    message: /stored as Q8_0, a type the converter's policy does not allow for this weight \(allowed: F16\)/,
  },
  {
    name: 'position embeddings quantized (llama.cpp keeps position_embd F32)',
    model: 'gpt2-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => void (tensorOf(p, 'position_embd.weight').dtype = 'Q8_0'),
    expected: ['F-LAYOUT-CONTRACT-007'],
  },
  {
    name: 'a weight in a type the target never produces (Q4_0 in a q8_0 file)',
    model: 'llama-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => void (tensorOf(p, 'blk.1.ffn_up.weight').dtype = 'Q4_0'),
    expected: ['F-LAYOUT-CONTRACT-007'],
  },
  {
    name: 'nothing quantized: the input written back with success (paiml/aprender#276)',
    model: 'llama-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => {
      for (const t of tensorsOf(p)) t.dtype = 'F32';
    },
    expected: ['F-LAYOUT-CONTRACT-007'],
    message: /nothing is quantized: every tensor is F32/,
    isFileLevel: true,
  },
  {
    name: 'apr int4 that quantized nothing',
    model: 'gpt2-tiny',
    target: 'apr/int4',
    mutate: (p) => {
      for (const t of tensorsOf(p)) t.dtype = 'F32';
    },
    expected: ['F-LAYOUT-CONTRACT-007'],
    message: /nothing is quantized/,
    isFileLevel: true,
  },
];

describe('checkPolicy catches every policy mutant', () => {
  for (const m of POLICY_MUTANTS) {
    it(`${m.name} → ${m.expected.join(', ')}`, () => {
      const c = convert(m.model, m.target, m.mutate);
      const r = checkPolicy(c.file, (m.policy ?? referencePolicy)(c.target), c.expected, c.src);
      expect(codes(r)).toEqual(m.expected);
      expect(r.suite).toBe('layout');
      expect(r.status).toBe('fail');
      if (m.message) expect(r.verdicts.map((v) => v.message).join('\n')).toMatch(m.message);
      if (m.isFileLevel) expect(r.verdicts.some((v) => v.tensor === undefined)).toBe(true);
    });
  }

  it('without the file bytes, a 1-D tensor is judged by dtype only', () => {
    const c = convert('qwen2-tiny', 'gguf/f32', (p) => {
      const t = tensorOf(p, 'output_norm.weight');
      t.values = t.values.map((v) => v * 2);
    });
    expect(checkPolicy(c.file, referencePolicy(c.target), c.expected).verdicts).toEqual([]);
    expect(codes(checkPolicy(c.file, referencePolicy(c.target), c.expected, c.src))).toEqual(['F-LAYOUT-CONTRACT-003']);
  });
});
