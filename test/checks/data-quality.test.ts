import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConvertedFiles, tensorOf, ZOO_MODELS, type Converted, type Mutate } from '../helpers/converted.js';
import type { CheckResult, VerdictCode } from '../../src/checks/codes.js';
import { checkDataQuality, DEAD_ROW_FRACTION_MAX, rowStats, SPOT_ROW_FRACTIONS } from '../../src/checks/data-quality.js';
import { TOLERANCES } from '../../src/checks/tolerances.js';
import { TARGET_IDS } from '../../src/converters/targets.js';

const MODELS = ZOO_MODELS;
type Model = (typeof MODELS)[number];
const files = new ConvertedFiles('tmgt-dq-');
beforeAll(() => files.load(MODELS), 120_000);
afterAll(() => files.close());

/** Replace a tensor's values with f(old values, rows, cols) (a copy: the plan may share arrays with the checkpoint). */
function rewrite(role: string, f: (v: Float32Array, rows: number, cols: number) => Float32Array): Mutate {
  return (plan) => {
    const t = tensorOf(plan, role);
    const rows = t.shape[0] ?? 1;
    t.values = f(Float32Array.from(t.values), rows, t.values.length / rows);
    delete t.data;
  };
}

const convert = (model: Model, targetId: string, mutate?: Mutate): Converted => files.convert(model, targetId, mutate);

const check = (c: Converted): CheckResult => checkDataQuality(c.file, c.src, c.expected, TOLERANCES[c.target.id]);
const codes = (r: CheckResult): VerdictCode[] => [...new Set(r.verdicts.map((v) => v.code))].sort();
const verdictsOn = (r: CheckResult, tensor: string) => r.verdicts.filter((v) => v.tensor === tensor);

/** Rows zeroed by the 30%-dead-rows mutant: r % 10 ∈ {1, 3, 7} misses the spot rows of a 384-row embedding (38, 192, 345). */
const isDeadRow = (r: number): boolean => [1, 3, 7].includes(r % 10);

describe('checkDataQuality on the reference converter', () => {
  for (const model of MODELS) {
    it(`${model}: no verdict at any target`, () => {
      for (const id of TARGET_IDS) {
        const r = check(convert(model, id));
        expect({ id, verdicts: r.verdicts }).toEqual({ id, verdicts: [] });
      }
    });
  }
});

interface DqMutant {
  name: string;
  model: Model;
  target: string;
  tensor: string;
  mutate: Mutate;
  /** Codes on `tensor` (exactly). */
  expected: VerdictCode[];
  message?: RegExp;
}

const DQ_MUTANTS: readonly DqMutant[] = [
  {
    name: 'constant tensor (every value 0.02)',
    model: 'llama-tiny',
    target: 'gguf/f32',
    tensor: 'blk.0.ffn_up.weight',
    mutate: rewrite('blk.0.ffn_up.weight', (v) => v.fill(0.02)),
    expected: ['F-DATA-QUALITY-003'],
    message: /constant: every value is 0\.02/,
  },
  {
    name: 'L2 ≈ 0: values scaled by 1e-9 (not zero, so the density gate is blind)',
    model: 'qwen2-tiny',
    target: 'gguf/f32',
    tensor: 'blk.1.attn_v.weight',
    mutate: rewrite('blk.1.attn_v.weight', (v) => v.map((x) => x * 1e-9)),
    expected: ['F-DATA-QUALITY-003', 'F-DATA-QUALITY-004', 'F-DATA-QUALITY-005'],
    message: /L2 .* \(< 0\.000001\)/,
  },
  {
    name: 'a quantized constant tensor (Q8_0 of a constant)',
    model: 'gpt2-tiny',
    target: 'gguf/q8_0',
    tensor: 'blk.1.ffn_down.weight',
    mutate: rewrite('blk.1.ffn_down.weight', (v) => v.fill(-0.5)),
    expected: ['F-DATA-QUALITY-003'],
  },
  {
    name: 'embedding loaded from a shifted offset: 60% leading zero rows (PMAT-234)',
    model: 'llama-tiny',
    target: 'gguf/f32',
    tensor: 'token_embd.weight',
    mutate: rewrite('token_embd.weight', (v, rows, cols) => {
      const k = Math.ceil(0.6 * rows);
      const out = new Float32Array(v.length);
      out.set(v.subarray(0, (rows - k) * cols), k * cols);
      return out;
    }),
    // Also -001: 60% zeros is more than the q8_0/f32 bound of +40% over the source.
    expected: ['F-DATA-QUALITY-001', 'F-DATA-QUALITY-004', 'F-DATA-QUALITY-005'],
    message: /spot rows 38, 192 of 384 \(10\/50\/90%\) are dead/,
  },
  {
    name: '30% dead rows, none of them a spot row',
    model: 'qwen2-tiny',
    target: 'gguf/q8_0',
    tensor: 'output.weight',
    mutate: rewrite('output.weight', (v, rows, cols) => {
      for (let r = 0; r < rows; r++) if (isDeadRow(r)) v.fill(0, r * cols, (r + 1) * cols);
      return v;
    }),
    expected: ['F-DATA-QUALITY-005'],
    message: /30\.\d% of 384 rows are dead .* the source has 0\.0% \(max 25\.0%\)/,
  },
  {
    name: 'one spot row dead (50%)',
    model: 'gpt2-tiny',
    target: 'gguf/f32',
    tensor: 'position_embd.weight',
    mutate: rewrite('position_embd.weight', (v, rows, cols) =>
      v.fill(0, Math.floor(0.5 * rows) * cols, (Math.floor(0.5 * rows) + 1) * cols),
    ),
    expected: ['F-DATA-QUALITY-004'],
    message: /spot row 64 of 128/,
  },
];

describe('checkDataQuality catches every data mutant', () => {
  for (const m of DQ_MUTANTS) {
    it(`${m.name} → ${m.expected.join(', ')}`, () => {
      const r = check(convert(m.model, m.target, m.mutate));
      expect([...new Set(verdictsOn(r, m.tensor).map((v) => v.code))].sort()).toEqual(m.expected);
      expect(codes(r)).toEqual(m.expected);
      if (m.message) expect(r.verdicts.map((v) => v.message).join('\n')).toMatch(m.message);
    });
  }
});

describe('checkDataQuality judges rows and constancy relative to the source', () => {
  it('a source with the same dead rows and constant tensor is not a finding', () => {
    const c = convert('qwen2-tiny', 'gguf/q8_0', (plan) => {
      rewrite('output.weight', (v, rows, cols) => {
        for (let r = 0; r < rows; r++) if (isDeadRow(r)) v.fill(0, r * cols, (r + 1) * cols);
        return v;
      })(plan);
      rewrite('blk.0.attn_q.bias', (v) => v.fill(0.25))(plan);
    });
    const expected = c.expected.map((e) => {
      if (e.name === 'output.weight') {
        const rows = e.shape[0] as number;
        const cols = e.source.length / rows;
        const s = Float32Array.from(e.source);
        for (let r = 0; r < rows; r++) if (isDeadRow(r)) s.fill(0, r * cols, (r + 1) * cols);
        return { ...e, source: s };
      }
      if (e.name === 'blk.0.attn_q.bias') return { ...e, source: new Float32Array(e.source.length).fill(0.25) };
      return e;
    });
    expect(checkDataQuality(c.file, c.src, expected, TOLERANCES['gguf/q8_0']).verdicts).toEqual([]);
  });

  it('rowStats: per-row L2, constancy (±0 alike), a 1-row view of a vector', () => {
    const s = rowStats(Float32Array.from([3, 4, 0, 0, -0, 0]), 3);
    expect([...s.rowL2]).toEqual([5, 0, 0]);
    expect(s.l2).toBe(5);
    expect(s.isConstant).toBe(false);
    expect(rowStats(Float32Array.from([0, -0, 0]), 1).isConstant).toBe(true);
    expect(rowStats(Float32Array.from([7]), 1).isConstant).toBe(false);
    expect(SPOT_ROW_FRACTIONS).toEqual([0.1, 0.5, 0.9]);
    expect(DEAD_ROW_FRACTION_MAX).toBe(0.25);
  });
});
