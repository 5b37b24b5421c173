/**
 * Cross-runtime: reference-converted zoo artifacts through the bundled engine and through llama.cpp
 * (node-llama-cpp 3.21.1, CPU, 1 thread), teacher-forced on the oracle's ids; the llama.cpp adapter's
 * failure path; and the check failing when the two engines do not compute the same model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCrossRuntime, crossRuntimeBounds, crossRuntimeClass, type CrossRuntimeBounds } from '../../src/checks/cross-runtime.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { requireRole, type ConversionPlan } from '../../src/converters/plan.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget, type TargetId } from '../../src/converters/targets.js';
import { runBundledEngine } from '../../src/engines/bundled.js';
import { runLlamaCppEngine } from '../../src/engines/llama-cpp.js';
import type { EngineRequest, EngineSequenceResult } from '../../src/engines/types.js';
import type { MappedArch } from '../../src/formats/name-map.js';
import { oracleRecords } from '../../src/oracle/records.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-cross-runtime-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Two prompts, prompt + 32 oracle greedy tokens each (~80 positions), keep the file fast. */
const PROMPTS = DEFAULT_PROMPTS.slice(0, 2);

async function request(model: string, target: TargetId, mutate?: (plan: ConversionPlan) => void, maxNewTokens = 0) {
  const sourceDir = await buildModel(findModelSpec(model));
  const tok = HfTokenizer.fromDir(sourceDir);
  // Same prompts and length as `tmgt check`, so the oracle comes from its cache entry.
  const oracle = (
    await oracleRecords(
      sourceDir,
      DEFAULT_PROMPTS.map((p) => tok.encode(p)),
      32,
    )
  ).slice(0, PROMPTS.length);
  const artifact = join(workDir, `${model}-${target.replace('/', '-')}${mutate ? '-mutant' : ''}.gguf`);
  convertCheckpoint(sourceDir, parseTarget(target), artifact, mutate);
  const req: EngineRequest = {
    artifact,
    format: 'gguf',
    sequences: oracle.map((o) => o.ids),
    maxNewTokens,
    promptLengths: oracle.map((o) => o.promptIds.length),
    captureLayers: false,
  };
  return { req, oracle };
}

function bundled(req: EngineRequest): EngineSequenceResult[] {
  const r = runBundledEngine(req);
  if (r.status !== 'ok') throw new Error(`bundled: ${r.message}`);
  return r.sequences;
}

async function llamaCpp(req: EngineRequest): Promise<EngineSequenceResult[]> {
  const r = await runLlamaCppEngine(req);
  if (r.status !== 'ok') throw new Error(`llama.cpp: ${r.message}`);
  expect(r.engine).toBe('llama.cpp');
  return r.sequences;
}

function crossChecks(ours: EngineSequenceResult[], theirs: EngineSequenceResult[], bounds: CrossRuntimeBounds) {
  return ours.map((o, i) =>
    checkCrossRuntime(PROMPTS[i] as string, o.logits, theirs[i]?.logits ?? new Float32Array(0), o.vocabSize, bounds),
  );
}

describe('bundled engine and llama.cpp agree on reference artifacts', () => {
  // Measured over these 2 prompts (~80 positions), mean KL(bundled ‖ llama.cpp): llama 4e-8, qwen2 1e-8,
  // gpt2 4e-8 at f32 (bounds 1e-6 / 1e-6 / 1e-5, cross-runtime.ts has the full table).
  it.each([
    ['llama-tiny', 'llama'],
    ['qwen2-tiny', 'qwen2'],
    ['gpt2-tiny', 'gpt2'],
  ] as const)('%s gguf/f32: mean KL within the f32 bound, same top-1 everywhere', async (model, arch: MappedArch) => {
    const { req } = await request(model, 'gguf/f32');
    const results = crossChecks(bundled(req), await llamaCpp(req), crossRuntimeBounds(arch, 'gguf/f32'));
    for (const r of results) {
      expect(r.verdicts, r.prompt).toEqual([]);
      expect(r.suite).toBe('cross-runtime');
      expect(r.metrics?.['sameTop1']).toBe(1);
      expect(r.metrics?.['positions']).toBeGreaterThan(30);
    }
  });

  it('qwen2-tiny gguf/q8_0: within the quantized bound (activation-rounding noise, not weight quantization)', async () => {
    const { req } = await request('qwen2-tiny', 'gguf/q8_0');
    expect(crossRuntimeClass('gguf/q8_0')).toBe('quantized');
    for (const r of crossChecks(bundled(req), await llamaCpp(req), crossRuntimeBounds('qwen2', 'gguf/q8_0'))) {
      expect(r.verdicts, r.prompt).toEqual([]);
      expect(r.metrics?.['klMean']).toBeGreaterThan(1e-7);
    }
  });

  it('llama.cpp’s own greedy decoding reproduces the oracle’s continuation on llama-tiny gguf/f32', async () => {
    const { req, oracle } = await request('llama-tiny', 'gguf/f32', undefined, 32);
    const theirs = await llamaCpp({ ...req, sequences: oracle.map((o) => o.promptIds) });
    theirs.forEach((s, i) => expect(s.greedyIds, PROMPTS[i]).toEqual(oracle[i]?.greedyIds));
  });
});

describe('checkCrossRuntime fails when the engines do not compute the same model', () => {
  it('llama.cpp run on a copy with blk.1 ffn_down × 2 (what an engine misreading one tensor looks like)', async () => {
    const clean = await request('llama-tiny', 'gguf/f32');
    const mutant = await request('llama-tiny', 'gguf/f32', (plan) => {
      const t = requireRole(plan, 'blk.1.ffn_down.weight');
      t.values = t.values.map((v) => v * 2);
    });
    const results = crossChecks(bundled(clean.req), await llamaCpp(mutant.req), crossRuntimeBounds('llama', 'gguf/f32'));
    for (const r of results) {
      expect(r.status).toBe('fail');
      expect(r.verdicts[0]?.code).toBe('F-CROSS-RUNTIME-001');
      expect(r.verdicts[0]?.message).toMatch(
        /^bundled engine and llama.cpp disagree: mean KL \d\.\d+e-\d+ > 1\.00e-6 \(worst position \d+: /,
      );
      expect(r.verdicts[0]?.evidence['klPerPosition']).toHaveLength(r.metrics?.['positions'] ?? -1);
    }
  });

  it('shape and NaN problems are verdicts', () => {
    const b = crossRuntimeBounds('llama', 'f32');
    expect(checkCrossRuntime('p', new Float32Array(8), new Float32Array(4), 4, b).verdicts[0]?.message).toMatch(
      /gave 8 values, llama.cpp 4/,
    );
    expect(checkCrossRuntime('p', Float32Array.from([0, NaN, 0, 0]), new Float32Array(4), 4, b).verdicts[0]?.message).toMatch(
      /NaN\/Inf: 1 in the bundled/,
    );
  });

  it('top-1 differs at a position that is not a near-tie, with the KL still small: a top-1 verdict', () => {
    // Two positions of vocab 3: the second has its top-2 swapped by a margin of 0.01 > the f32 near-tie margin.
    const ours = Float32Array.from([5, 0, 0, 5.005, 4.995, 0]);
    const theirs = Float32Array.from([5, 0, 0, 4.995, 5.005, 0]);
    const b = { ...crossRuntimeBounds('gpt2', 'f32'), klMeanMax: 1 };
    const r = checkCrossRuntime('p', ours, theirs, 3, b);
    expect(r.verdicts.map((v) => v.message)).toEqual([
      'bundled engine and llama.cpp pick different top-1 tokens at 1 of 2 positions (first: 1)',
    ]);
  });
});

describe('runLlamaCppEngine failures are results carrying llama.cpp’s own words', () => {
  it('a GGUF without tokenizer merges: status failed, llama.cpp’s reason in the message', async () => {
    const { req } = await request('llama-tiny', 'gguf/f32', (plan) => {
      if (plan.format === 'gguf') plan.kvs = plan.kvs.filter((k) => k.key !== 'tokenizer.ggml.merges');
    });
    const r = await runLlamaCppEngine(req);
    expect(r.status).toBe('failed');
    if (r.status === 'failed') {
      expect(r.engine).toBe('llama.cpp');
      expect(r.message).toMatch(/cannot find tokenizer merges in model file/);
    }
  });

  it('a file that is not there', async () => {
    const r = await runLlamaCppEngine({
      artifact: join(workDir, 'missing.gguf'),
      format: 'gguf',
      sequences: [[1, 2]],
      maxNewTokens: 0,
      promptLengths: [2],
      captureLayers: false,
    });
    expect(r.status).toBe('failed');
    if (r.status === 'failed') expect(r.message).toMatch(/missing\.gguf/);
  });
});
