/**
 * L6 tokens on real greedy continuations: the bundled engine on reference artifacts against the
 * onnxruntime oracle's, clean and with blk.1 ffn_down scaled by 2; drift ordering over real counts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { greedySteps, klPerRow, mean } from '../../src/checks/metrics.js';
import { TOLERANCES } from '../../src/checks/tolerances.js';
import { checkDriftOrdering, checkTokens, compareGreedy, precisionRank, type DriftCell } from '../../src/checks/tokens.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { requireRole, type ConversionPlan } from '../../src/converters/plan.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget, type TargetId } from '../../src/converters/targets.js';
import { runBundledEngine } from '../../src/engines/bundled.js';
import { oracleRecords } from '../../src/oracle/records.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

const MAX_NEW_TOKENS = 32;
const workDir = mkdtempSync(join(tmpdir(), 'tmgt-tokens-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const ffnDownTimes =
  (factor: number) =>
  (plan: ConversionPlan): void => {
    const t = requireRole(plan, 'blk.1.ffn_down.weight');
    t.values = t.values.map((v) => v * factor);
  };
const ffnDownTimes2 = ffnDownTimes(2);

/** The oracle and the bundled engine's greedy continuations of the default prompts on one artifact. */
async function greedyRun(model: string, target: TargetId, mutate?: (plan: ConversionPlan) => void) {
  const sourceDir = await buildModel(findModelSpec(model));
  const tok = HfTokenizer.fromDir(sourceDir);
  const oracle = await oracleRecords(
    sourceDir,
    DEFAULT_PROMPTS.map((p) => tok.encode(p)),
    MAX_NEW_TOKENS,
  );
  const artifact = join(workDir, `${model}-${target.replace('/', '-')}${mutate ? '-mutant' : ''}.gguf`);
  convertCheckpoint(sourceDir, parseTarget(target), artifact, mutate);
  const run = runBundledEngine({
    artifact,
    format: 'gguf',
    sequences: oracle.map((o) => o.promptIds),
    maxNewTokens: MAX_NEW_TOKENS,
    promptLengths: oracle.map((o) => o.promptIds.length),
    captureLayers: false,
  });
  if (run.status !== 'ok') throw new Error(run.message);
  return oracle.map((o, i) => ({
    prompt: DEFAULT_PROMPTS[i] as string,
    oracle: o.greedyIds,
    got: run.sequences[i]?.greedyIds ?? [],
    steps: greedySteps(o.logits, o.vocabSize, o.promptIds.length, MAX_NEW_TOKENS),
    decode: (ids: number[]) => tok.decode(ids),
  }));
}

describe('compareGreedy and checkTokens on hand-made continuations', () => {
  const CASES = [
    { oracle: [1, 2, 3, 4], got: [1, 2, 3, 4], mismatches: 0, first: -1 },
    { oracle: [1, 2, 3, 4], got: [1, 9, 3, 4], mismatches: 1, first: 1 },
    { oracle: [1, 2, 3, 4], got: [1, 2], mismatches: 2, first: 2 },
    { oracle: [1, 2, 3, 4], got: [5, 6, 7, 8], mismatches: 4, first: 0 },
  ] as const;
  it.each(CASES)('$oracle vs $got: $mismatches mismatches, first at $first', ({ oracle, got, mismatches, first }) => {
    expect(compareGreedy(oracle, got)).toEqual({ mismatches, firstDivergence: first, length: 4 });
  });

  const f32 = TOLERANCES['gguf/f32'];
  const bound1 = { ...TOLERANCES['gguf/q8_0'], greedyMismatchMax: 1 };

  it('canary (bound 0): one difference is F-TOKENS-001; bound 1: one passes, two are F-TOKENS-002', () => {
    expect(checkTokens('p', [1, 2, 3], [1, 2, 9], f32).verdicts.map((v) => v.code)).toEqual(['F-TOKENS-001']);
    expect(checkTokens('p', [1, 2, 3], [1, 2, 9], bound1).status).toBe('pass');
    const r = checkTokens('p', [1, 2, 3], [1, 8, 9], bound1);
    expect(r.verdicts.map((v) => v.code)).toEqual(['F-TOKENS-002']);
    expect(r.verdicts[0]?.evidence).toMatchObject({ mismatches: 2, firstDivergence: 1, bound: 1, minPassingBound: 2 });
    expect(r.metrics).toEqual({ mismatches: 2, rawMismatches: 2, firstDivergence: 1, tokens: 3, nearTieStop: 0 });
  });

  // Near-tie margin at q8_0 (NMSE bound 1e-3): 2·√1e-3·rms ≈ 0.063·rms.
  const NEAR_TIE_CASES = [
    { name: 'divergence at an oracle near-tie: the count stops there', margin: 0.01, rms: 1, codes: [], counted: 0, stop: 1 },
    {
      name: 'divergence at a clear oracle choice: every differing token counts',
      margin: 0.5,
      rms: 1,
      codes: ['F-TOKENS-002'],
      counted: 2,
      stop: 0,
    },
    { name: 'the margin scales with the row: 0.1 is a near-tie in a row of rms 4', margin: 0.1, rms: 4, codes: [], counted: 0, stop: 1 },
  ] as const;
  it.each(NEAR_TIE_CASES)('$name', ({ margin, rms, codes, counted, stop }) => {
    const steps = [
      { margin: 9, rms },
      { margin, rms },
      { margin: 9, rms },
    ];
    const r = checkTokens('p', [1, 2, 3], [1, 8, 9], bound1, undefined, steps);
    expect(r.verdicts.map((v) => v.code)).toEqual(codes);
    expect(r.metrics).toMatchObject({ mismatches: counted, rawMismatches: 2, nearTieStop: stop, marginAtDivergence: margin });
  });
});

describe('checkTokens on the bundled engine vs the oracle (llama-tiny)', () => {
  it('reference gguf/q8_0: wherever it diverges at all, it is at an oracle near-tie, and the count stops there', async () => {
    for (const p of await greedyRun('llama-tiny', 'gguf/q8_0')) {
      const r = checkTokens(p.prompt, p.oracle, p.got, TOLERANCES['gguf/q8_0'], p.decode, p.steps);
      expect(r.verdicts, p.prompt).toEqual([]);
      if ((r.metrics?.['rawMismatches'] ?? 0) > 0) expect(r.metrics?.['nearTieStop'], p.prompt).toBe(1);
    }
  });

  it('reference gguf/f32: every continuation exact under the canary bound', async () => {
    for (const p of await greedyRun('llama-tiny', 'gguf/f32')) {
      const r = checkTokens(p.prompt, p.oracle, p.got, TOLERANCES['gguf/f32'], p.decode, p.steps);
      expect(r.verdicts, p.prompt).toEqual([]);
      expect(r.metrics?.['tokens']).toBe(MAX_NEW_TOKENS);
    }
  });

  it('f32 with blk.1 ffn_down × 2: F-TOKENS-001 with the first divergence and both continuations decoded', async () => {
    const runs = await greedyRun('llama-tiny', 'gguf/f32', ffnDownTimes2);
    const results = runs.map((p) => checkTokens(p.prompt, p.oracle, p.got, TOLERANCES['gguf/f32'], p.decode, p.steps));
    const failed = results.filter((r) => r.status === 'fail');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    for (const r of failed) {
      const v = r.verdicts[0];
      expect(v?.code).toBe('F-TOKENS-001');
      const e = v?.evidence as {
        firstDivergence: number;
        expectedText: string;
        gotText: string;
        expectedFromDivergence: string;
        oracleMarginAtDivergence: number;
      };
      expect(e.firstDivergence).toBeGreaterThanOrEqual(0);
      expect(e.expectedText).not.toBe(e.gotText);
      expect(e.expectedText.endsWith(e.expectedFromDivergence)).toBe(true);
      expect(e.oracleMarginAtDivergence).toBeGreaterThan(0);
      expect(v?.message).toMatch(
        /must be exact but differs from token \d+ on .* \(oracle top-2 margin there .*, near-tie below .*\): expected ".*", got ".*"/,
      );
    }
  });

  it('q8_0 with blk.1 ffn_down × 2: more than 3/32 differ → F-TOKENS-002', async () => {
    const runs = await greedyRun('llama-tiny', 'gguf/q8_0', ffnDownTimes2);
    // With the oracle's near-ties known: these divergences are at clear choices, so they all count.
    const codes = runs.flatMap((p) =>
      checkTokens(p.prompt, p.oracle, p.got, TOLERANCES['gguf/q8_0'], p.decode, p.steps).verdicts.map((v) => v.code),
    );
    expect(codes.length).toBeGreaterThanOrEqual(2);
    expect(new Set(codes)).toEqual(new Set(['F-TOKENS-002']));
  });
});

describe('checkDriftOrdering', () => {
  it('the rank table: more bits, lower rank; ids and types both resolve', () => {
    expect(precisionRank('gguf/f32')).toBe(0);
    expect(precisionRank('apr/int8')).toBe(precisionRank('gguf/q8_0'));
    expect(precisionRank('gguf/q4_k')).toBe(precisionRank('apr/int4'));
    expect(precisionRank('gguf/iq2_xxs')).toBeUndefined();
    const order = ['gguf/f32', 'gguf/f16', 'gguf/q8_0', 'gguf/q6_k', 'gguf/q5_0', 'gguf/q4_0'].map((t) => precisionRank(t) ?? NaN);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  const CASES = [
    {
      name: 'monotone drift',
      cells: [
        ['gguf/f32', 0],
        ['gguf/q8_0', 2e-4],
        ['gguf/q4_0', 9e-3],
      ],
      violations: [],
    },
    {
      name: 'higher precision up to twice a lower one: within the ratio',
      cells: [
        ['gguf/q8_0', 3e-3],
        ['gguf/q4_0', 2e-3],
      ],
      violations: [],
    },
    {
      name: 'equal ranks are not ordered',
      cells: [
        ['gguf/f16', 9e-3],
        ['gguf/bf16', 0],
      ],
      violations: [],
    },
    {
      name: 'formats are not ordered against each other',
      cells: [
        ['apr/int8', 3e-2],
        ['gguf/q4_0', 1e-2],
      ],
      violations: [],
    },
    {
      name: 'q8_0 drifts 5e-3, q4_0 2e-3',
      cells: [
        ['gguf/f32', 0],
        ['gguf/q8_0', 5e-3],
        ['gguf/q4_0', 2e-3],
      ],
      violations: [['gguf/q8_0', 'gguf/q4_0']],
    },
    {
      name: 'f32 drifts more than both',
      cells: [
        ['gguf/f32', 4e-3],
        ['gguf/q8_0', 1e-4],
        ['gguf/q4_0', 1e-3],
      ],
      violations: [
        ['gguf/f32', 'gguf/q8_0'],
        ['gguf/f32', 'gguf/q4_0'],
      ],
    },
  ] as const;
  it.each(CASES)('$name', ({ cells, violations }) => {
    const input: DriftCell[] = cells.map(([target, drift]) => ({ target, drift, precisionRank: precisionRank(target) ?? NaN }));
    const verdicts = checkDriftOrdering(input);
    expect(verdicts.map((v) => v.code)).toEqual(violations.map(() => 'F-TOKENS-003'));
    expect(
      verdicts.map((v) => [(v.evidence['higherPrecision'] as DriftCell).target, (v.evidence['lowerPrecision'] as DriftCell).target]),
    ).toEqual(violations);
  });

  it('gpt2-tiny, real runs: the reference drifts in order; a q8_0 artifact with blk.1 ffn_down × 3 breaks it', async () => {
    const drift = async (target: TargetId, mutate?: (plan: ConversionPlan) => void): Promise<DriftCell> => {
      const sourceDir = await buildModel(findModelSpec('gpt2-tiny'));
      const tok = HfTokenizer.fromDir(sourceDir);
      const oracle = await oracleRecords(
        sourceDir,
        DEFAULT_PROMPTS.map((p) => tok.encode(p)),
        MAX_NEW_TOKENS,
      );
      const artifact = join(workDir, `drift-${target.replace('/', '-')}${mutate ? '-mutant' : ''}.gguf`);
      convertCheckpoint(sourceDir, parseTarget(target), artifact, mutate);
      // Teacher-forced on the oracle's ids, as the logits claims are: the mean KL over every position, as the matrix feeds it.
      const run = runBundledEngine({
        artifact,
        format: 'gguf',
        sequences: oracle.map((o) => o.ids),
        maxNewTokens: 0,
        promptLengths: oracle.map((o) => o.promptIds.length),
        captureLayers: false,
      });
      if (run.status !== 'ok') throw new Error(run.message);
      const kls = oracle.map((o, i) => mean(klPerRow(o.logits, run.sequences[i]?.logits ?? new Float32Array(0), o.vocabSize)));
      return { target, precisionRank: precisionRank(target) ?? NaN, drift: mean(kls) };
    };
    const f32 = await drift('gguf/f32');
    const q8 = await drift('gguf/q8_0');
    const q4 = await drift('gguf/q4_0');
    expect(checkDriftOrdering([f32, q8, q4])).toEqual([]);
    const broken = await drift('gguf/q8_0', ffnDownTimes(3));
    expect(broken.drift).toBeGreaterThan(2 * q4.drift);
    const verdicts = checkDriftOrdering([f32, broken, q4]);
    expect(verdicts.map((v) => v.code)).toEqual(['F-TOKENS-003']);
    expect(verdicts[0]?.message).toMatch(/^gguf\/q8_0 \(rank 2\) drifts more than gguf\/q4_0 \(rank 5\): mean KL /);
  });
});
