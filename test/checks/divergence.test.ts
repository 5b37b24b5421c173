/**
 * First diverging layer: the rule on hand-made layer outputs, then on a real engine run of a reference
 * artifact whose blk.1 ffn_down was scaled by 2 (the logits check must name blk.1), and of one whose
 * output_norm was scaled (every block passes: the divergence is after the last one).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstDivergingLayer, layerNmses } from '../../src/checks/divergence.js';
import { checkLogits } from '../../src/checks/logits.js';
import { TOLERANCES } from '../../src/checks/tolerances.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { requireRole } from '../../src/converters/plan.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { runBundledEngine } from '../../src/engines/bundled.js';
import type { EngineSequenceResult } from '../../src/engines/types.js';
import type { OracleRecord } from '../../src/oracle/run.js';
import { oracleRecords } from '../../src/oracle/records.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

/** A layer output whose NMSE against `base` is exactly `e` (base + √e·base). */
const off = (base: Float32Array, e: number): Float32Array => base.map((v) => v * (1 + Math.sqrt(e)));

describe('firstDivergingLayer: the first layer that fails while its input passes', () => {
  const base = [
    Float32Array.from([1, -2, 3, 0.5]),
    Float32Array.from([2, 1, -1, 4]),
    Float32Array.from([0.3, 0.2, -5, 1]),
    Float32Array.from([1, 1, 1, 1]),
  ];
  const BOUND = 1e-6;
  const CASES = [
    { name: 'every layer passes', nmse: [0, 1e-8, 1e-7, 1e-7], expected: undefined },
    {
      name: 'layer 0 fails: its input, the embedding, counts as passing',
      nmse: [1e-2, 1e-2, 1e-2, 1e-2],
      expected: { layer: 0, inputNmse: 0 },
    },
    { name: 'layer 2 fails after two passing layers', nmse: [1e-9, 1e-8, 4e-2, 5e-2], expected: { layer: 2, inputNmse: 1e-8 } },
    {
      name: 'a layer that recovers does not hide the first source',
      nmse: [1e-9, 1e-3, 1e-8, 1e-3],
      expected: { layer: 1, inputNmse: 1e-9 },
    },
  ] as const;
  it.each(CASES)('$name', ({ nmse, expected }) => {
    const engine = base.map((b, l) => off(b, nmse[l] as number));
    const got = firstDivergingLayer(base, engine, BOUND);
    if (expected === undefined) expect(got).toBeUndefined();
    else {
      expect(got?.layer).toBe(expected.layer);
      // f32 layer values: the NMSE is the constructed one to a relative 1e-3.
      const near = (x: number | undefined, want: number) => expect(Math.abs((x ?? NaN) - want)).toBeLessThanOrEqual(1e-3 * want);
      near(got?.inputNmse, expected.inputNmse);
      near(got?.nmse, nmse[expected.layer]);
    }
  });

  it('a missing or mis-sized layer fails (NaN NMSE)', () => {
    expect(layerNmses(base, [base[0] as Float32Array, new Float32Array(3)])).toEqual([0, NaN, NaN, NaN]);
    expect(firstDivergingLayer(base, base.slice(0, 2), BOUND)?.layer).toBe(2);
  });
});

describe('checkLogits names the first diverging layer on a real engine run (llama-tiny, gguf/f32)', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'tmgt-divergence-'));
  const tol = TOLERANCES['gguf/f32'];
  let sourceDir = '';
  let oracle: OracleRecord[] = [];
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  beforeAll(async () => {
    sourceDir = await buildModel(findModelSpec('llama-tiny'));
    const tok = HfTokenizer.fromDir(sourceDir);
    // The prompts and length `tmgt check` uses, so the oracle comes from the same cache entry.
    oracle = await oracleRecords(
      sourceDir,
      DEFAULT_PROMPTS.map((p) => tok.encode(p)),
      32,
    );
  });

  function run(name: string, mutate?: Parameters<typeof convertCheckpoint>[3]): EngineSequenceResult[] {
    const artifact = join(workDir, `${name}.gguf`);
    convertCheckpoint(sourceDir, parseTarget('gguf/f32'), artifact, mutate);
    const r = runBundledEngine({
      artifact,
      format: 'gguf',
      sequences: oracle.map((o) => o.ids),
      maxNewTokens: 0,
      promptLengths: oracle.map((o) => o.promptIds.length),
      captureLayers: true,
    });
    if (r.status !== 'ok') throw new Error(r.message);
    return r.sequences;
  }

  const scale = (role: string, k: number) => (plan: Parameters<NonNullable<Parameters<typeof convertCheckpoint>[3]>>[0]) => {
    const t = requireRole(plan, role);
    t.values = t.values.map((v) => v * k);
  };

  it('the clean artifact passes with the layer captures given', () => {
    const got = run('clean');
    oracle.forEach((o, i) => {
      const g = got[i];
      if (!g?.layerOutputs) throw new Error('no layer captures');
      expect(g.layerOutputs).toHaveLength(2);
      const r = checkLogits(DEFAULT_PROMPTS[i] as string, o.logits, g.logits, o.vocabSize, tol, {
        oracle: o.layerOutputs,
        candidate: g.layerOutputs,
      });
      expect(r.verdicts).toEqual([]);
    });
  });

  it('blk.1 ffn_down × 2: every prompt fails and the message names blk.1, with blk.0 passing as its input', () => {
    const got = run('blk1-ffn-down-x2', scale('blk.1.ffn_down.weight', 2));
    oracle.forEach((o, i) => {
      const g = got[i];
      if (!g?.layerOutputs) throw new Error('no layer captures');
      const r = checkLogits(DEFAULT_PROMPTS[i] as string, o.logits, g.logits, o.vocabSize, tol, {
        oracle: o.layerOutputs,
        candidate: g.layerOutputs,
      });
      expect(r.status).toBe('fail');
      const v = r.verdicts.find((x) => x.code === 'F-LOGITS-002');
      expect(v?.message).toMatch(/; first diverging layer: blk\.1 \(NMSE \d\.\de[-+]\d+, input \d\.\de-\d+\)$/);
      const first = v?.evidence['firstDivergingLayer'] as { layer: number; name: string; nmse: number; inputNmse: number };
      expect(first.name).toBe('blk.1');
      expect(first.inputNmse).toBeLessThanOrEqual(tol.logitsNmseMax);
      expect(first.nmse).toBeGreaterThan(1e-3);
      expect(v?.evidence['layerNmse']).toHaveLength(2);
      expect(r.metrics?.['firstDivergingLayer']).toBe(1);
    });
  });

  it('output_norm × 1.5: the blocks pass, the message says the divergence is after the last block', () => {
    const got = run('output-norm-x1.5', scale('output_norm.weight', 1.5));
    const o = oracle[0] as OracleRecord;
    const g = got[0] as EngineSequenceResult;
    const r = checkLogits(DEFAULT_PROMPTS[0], o.logits, g.logits, o.vocabSize, tol, {
      oracle: o.layerOutputs,
      candidate: g.layerOutputs ?? [],
    });
    expect(r.status).toBe('fail');
    expect(r.verdicts[0]?.message).toMatch(/no layer diverges \(all 2 blocks within NMSE 1e-7\): the divergence is after the last block/);
    expect(r.verdicts[0]?.evidence['firstDivergingLayer']).toBeNull();
  });
});
