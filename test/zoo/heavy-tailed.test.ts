/**
 * The heavy-tailed zoo member (models/llama-tiny-heavy.json, src/zoo/heavy-tail.ts): derived deterministically
 * from the committed llama-tiny weights, its linear weights carry real-LLM-like outliers (kurtosis and max/RMS far
 * above the Gaussian-like source), the outlier channels are compensated exactly (same function), and it still
 * passes the peakedness contract of test/zoo/peakedness.test.ts under the onnxruntime oracle.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runOracle } from '../../src/oracle/run.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { heavyTailed, linearWeightNames, tailStats, type HeavyTailRecipe } from '../../src/zoo/heavy-tail.js';
import { findModelSpec, type ModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';
import { measurePeakedness, readHeldout } from '../../training/peakedness.js';

const HEAVY = ['llama-tiny-heavy', 'qwen2-tiny-heavy', 'gpt2-tiny-heavy'] as const;

function derived(name: string): Extract<ModelSpec, { kind: 'derived' }> & { heavyTail: HeavyTailRecipe } {
  const spec = findModelSpec(name);
  if (spec.kind !== 'derived') throw new Error(`${name} is a '${spec.kind}' spec, expected 'derived'`);
  const heavyTail = spec.heavyTail;
  if (heavyTail === undefined) throw new Error(`${name} has no heavyTail recipe`);
  return { ...spec, heavyTail };
}

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

describe.each(HEAVY)('%s', (name) => {
  const spec = derived(name);

  it('is built deterministically from its base model: same recipe, same bytes; another seed, other bytes', async () => {
    const dir = await buildModel(spec);
    const base = loadCheckpoint(await buildModel(findModelSpec(spec.from)));
    const again = heavyTailed(base, spec.heavyTail).checkpoint;
    const built = loadCheckpoint(dir);
    for (const [n, t] of built.tensors) expect(same(t.data, again.tensors.get(n)!.data), n).toBe(true);
    const other = heavyTailed(base, { ...spec.heavyTail, seed: spec.heavyTail.seed + 1 }).checkpoint;
    const q = linearWeightNames(base)[0]!;
    expect(same(other.tensors.get(q)!.data, again.tensors.get(q)!.data)).toBe(false);
    // The base checkpoint is not modified in place.
    const baseDir = await buildModel(findModelSpec(spec.from));
    expect(same(base.tensors.get(q)!.data, loadCheckpoint(baseDir).tensors.get(q)!.data)).toBe(true);
    expect(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(baseDir, 'tokenizer.json'), 'utf8'));
  });

  it('has heavy-tailed linear weights: per-tensor kurtosis and max/RMS far above the source model', async () => {
    const base = loadCheckpoint(await buildModel(findModelSpec(spec.from)));
    const heavy = loadCheckpoint(await buildModel(spec));
    const stats = (c: typeof base, n: string) => tailStats(c.tensors.get(n)!.data);
    const rows = linearWeightNames(base).map((n) => ({ n, before: stats(base, n), after: stats(heavy, n) }));
    console.log(`[${name}] per-tensor kurtosis and max/RMS, ${spec.from} → ${name}`);
    for (const r of rows) {
      const k = `${r.before.kurtosis.toFixed(1)} → ${r.after.kurtosis.toFixed(1)}`;
      const m = `${r.before.maxOverRms.toFixed(1)} → ${r.after.maxOverRms.toFixed(1)}`;
      console.log(`  ${r.n.padEnd(40)} kurtosis ${k.padEnd(16)} max/rms ${m}`);
    }
    // The trained source is Gaussian-like (kurtosis ≈ 3, max/RMS ≈ 4); real LLM weights are not.
    expect(median(rows.map((r) => r.before.kurtosis))).toBeLessThan(4);
    // Tensors with outlier channels are far heavier; those with entry outliers only (GPT-2's mlp.c_proj, whose input
    // comes through gelu and cannot be compensated) are heavier by less.
    const channelsOnly = heavyTailed(base, { ...spec.heavyTail, entryFraction: 0 }).checkpoint;
    const hasChannels = (n: string) => !same(channelsOnly.tensors.get(n)!.data, base.tensors.get(n)!.data);
    expect(rows.filter((r) => hasChannels(r.n)).length).toBeGreaterThanOrEqual(rows.length * 0.75);
    for (const r of rows) {
      const [k, m] = hasChannels(r.n) ? [3, 2] : [1.2, 1.5];
      expect(r.after.kurtosis, r.n).toBeGreaterThan(k * r.before.kurtosis);
      expect(r.after.maxOverRms, r.n).toBeGreaterThan(m * r.before.maxOverRms);
    }
    expect(median(rows.map((r) => r.after.maxOverRms))).toBeGreaterThan(10);
    // Embeddings (and with them a tied head) are untouched.
    const linear = new Set(linearWeightNames(base));
    const others = [...base.tensors].filter(([n, t]) => t.shape.length === 2 && !linear.has(n));
    expect(others.length).toBeGreaterThan(0);
    for (const [n, t] of others) expect(heavy.tensors.get(n)!.data, n).toEqual(t.data);
  });

  it('compensated outlier channels keep the function: channels only (no entry outliers) → same oracle logits', async () => {
    const baseDir = await buildModel(findModelSpec(spec.from));
    const base = loadCheckpoint(baseDir);
    const channelsOnly = heavyTailed(base, { ...spec.heavyTail, entryFraction: 0 });
    expect(channelsOnly.edits.channels.length).toBeGreaterThan(0);
    expect(channelsOnly.edits.channels.every((c) => c.compensated)).toBe(true);
    const tok = HfTokenizer.fromDir(baseDir);
    const docs = readHeldout()
      .slice(0, 6)
      .map((d) => tok.encode(d));
    const a = await runOracle(base, docs, { maxNewTokens: 0 });
    const b = await runOracle(channelsOnly.checkpoint, docs, { maxNewTokens: 0 });
    let num = 0;
    let den = 0;
    a.forEach((r, i) =>
      r.logits.forEach((v, j) => {
        const d = v - b[i]!.logits[j]!;
        num += d * d;
        den += v * v;
      }),
    );
    console.log(`[${name}] channels only vs ${spec.from}: logits NMSE ${(num / den).toExponential(2)}`);
    // f32 rounding of x·s·(1/s) only; an uncompensated (or wrongly compensated) channel gives NMSE ≫ 1e-6.
    expect(num / den).toBeLessThan(1e-8);
    const uncompensated = heavyTailed(base, { ...spec.heavyTail, entryFraction: 0, compensate: false }).checkpoint;
    const c = await runOracle(uncompensated, docs, { maxNewTokens: 0 });
    let numU = 0;
    a.forEach((r, i) => r.logits.forEach((v, j) => (numU += (v - c[i]!.logits[j]!) ** 2)));
    expect(numU / den).toBeGreaterThan(1e-4);
  });

  it('stays a good model: the peakedness contract (mean top-1 p ≥ 0.5 on held-out text under the oracle, France → Paris)', async () => {
    const [p, source] = await Promise.all([
      measurePeakedness(spec, { prompts: ['The capital of France is'] }),
      measurePeakedness(findModelSpec(spec.from), { prompts: ['The capital of France is'] }),
    ]);
    const fmt = (x: typeof p) =>
      `top-1 p ${x.meanTop1Prob.toFixed(3)}, top-1 acc ${x.top1Accuracy.toFixed(3)}, p(next) ${x.meanTargetProb.toFixed(3)}`;
    console.log(`[${name}] ${fmt(p)} (${spec.from}: ${fmt(source)}) over ${p.positions} held-out positions`);
    expect(p.positions).toBeGreaterThan(200);
    expect(p.meanTop1Prob).toBeGreaterThanOrEqual(0.5);
    expect(p.meanTargetProb).toBeGreaterThanOrEqual(0.5);
    expect(p.top1Accuracy).toBeGreaterThanOrEqual(0.5);
    expect(p.continuations[0]?.text).toContain('Paris');
  });
});
