import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { klPerRow, mean, nmse } from '../../src/checks/metrics.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget, TARGET_IDS, type TargetId } from '../../src/converters/targets.js';
import type { KernelChoice } from '../../src/engine/kernels.js';
import { argmax, LlamaModel } from '../../src/engine/llama.js';
import { loadEngineModel } from '../../src/engine/registry.js';
import type { EngineModel } from '../../src/engine/types.js';
import { runBundledEngine } from '../../src/engines/bundled.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readGguf } from '../../src/formats/gguf/reader.js';
import { readModelFile } from '../../src/formats/read-model.js';
import { oracleRecords } from '../../src/oracle/records.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-wasm-engine-'));
const MAX_NEW_TOKENS = 32;

type OracleRecord = Awaited<ReturnType<typeof oracleRecords>>[number];

// Issue 11 item 7: f32 logits equal the oracle's to NMSE ≤ 1e-10 (measured 1.3e-13 – 2.2e-13 on the tiny zoo).
const F32_LOGITS_NMSE_MAX = 1e-10;
// A quantized artifact's logits are as far from the oracle on the WASM path as on the TS reference path: only the
// summation order differs, which moves a Q8_0 activation code across a rounding boundary now and then (measured
// at most 1.3% apart, llama-tiny q8_0). A kernel that misreads one block type is orders of magnitude off.
const QUANT_RELATIVE_SLACK = 0.05;

interface Prepared {
  sourceDir: string;
  oracle: OracleRecord[];
  config: Record<string, unknown>;
}

const prepared = new Map<string, Promise<Prepared>>();
function prepare(model: string): Promise<Prepared> {
  let p = prepared.get(model);
  if (p === undefined) {
    p = (async () => {
      const sourceDir = await buildModel(findModelSpec(model));
      const tok = HfTokenizer.fromDir(sourceDir);
      const oracle = await oracleRecords(
        sourceDir,
        DEFAULT_PROMPTS.map((s) => tok.encode(s)),
        MAX_NEW_TOKENS,
      );
      const config = JSON.parse(readFileSync(join(sourceDir, 'config.json'), 'utf8')) as Record<string, unknown>;
      return { sourceDir, oracle, config };
    })();
    prepared.set(model, p);
  }
  return p;
}

function convert(model: string, sourceDir: string, target: TargetId): string {
  const t = parseTarget(target);
  const artifact = join(workDir, `${model}.${t.type}.${t.format}`);
  convertCheckpoint(sourceDir, t, artifact);
  return artifact;
}

function withModel<T>(artifact: string, config: Record<string, unknown>, kernels: KernelChoice, f: (m: EngineModel) => T): T {
  const src = new FileByteSource(artifact);
  try {
    return f(loadEngineModel(readModelFile(src), src, { config, kernels }));
  } finally {
    src.close();
  }
}

/** Teacher-forced logits of every oracle sequence. */
function logitsOf(m: EngineModel, oracle: OracleRecord[]): Float32Array[] {
  return oracle.map((o) => {
    const s = m.session(o.ids.length);
    const out = new Float32Array(o.ids.length * m.hp.vocab);
    o.ids.forEach((id, i) => out.set(s.step(id), i * m.hp.vocab));
    return out;
  });
}

const worst = (xs: number[]): number => Math.max(...xs);

describe('WASM kernels in the whole engine', () => {
  for (const model of ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const) {
    for (const target of ['gguf/f32', 'apr/f32'] as const) {
      it(`${model} × ${target}: f32 logits at NMSE ≤ ${F32_LOGITS_NMSE_MAX} from the oracle`, async () => {
        const { sourceDir, oracle, config } = await prepare(model);
        const artifact = convert(model, sourceDir, target);
        const got = withModel(artifact, config, 'wasm', (m) => logitsOf(m, oracle));
        expect(worst(got.map((g, i) => nmse(oracle[i]?.logits ?? new Float32Array(0), g)))).toBeLessThanOrEqual(F32_LOGITS_NMSE_MAX);
      });
    }
  }

  // Every target on llama-tiny; the Conv1D ([in, out]) HF-layout ones on gpt2-tiny.
  const quantCases: [string, TargetId][] = [
    ...TARGET_IDS.filter((t) => t !== 'gguf/f32' && t !== 'apr/f32').map((t): [string, TargetId] => ['llama-tiny', t]),
    ...(['apr/int8', 'apr/int4', 'safetensors/f16', 'gguf/q4_k'] as const).map((t): [string, TargetId] => ['gpt2-tiny', t]),
  ];
  for (const [model, target] of quantCases) {
    it(`${model} × ${target}: as close to the oracle as the TS reference path`, async () => {
      const { sourceDir, oracle, config } = await prepare(model);
      const artifact = convert(model, sourceDir, target);
      const score = (kernels: KernelChoice): number =>
        worst(
          withModel(artifact, config, kernels, (m) => logitsOf(m, oracle)).map((g, i) => nmse(oracle[i]?.logits ?? new Float32Array(0), g)),
        );
      const ts = score('ts');
      const wasm = score('wasm');
      expect(Number.isFinite(wasm)).toBe(true);
      expect(Math.abs(wasm - ts)).toBeLessThanOrEqual(QUANT_RELATIVE_SLACK * ts + 1e-12);
    });
  }
});

describe('KV cache reuse and layer capture', () => {
  for (const model of ['llama-tiny', 'gpt2-tiny'] as const) {
    it(`${model}: a fork of the prompt's session continues exactly as a fresh session that re-reads the prompt`, async () => {
      const { sourceDir, oracle, config } = await prepare(model);
      const artifact = convert(model, sourceDir, 'gguf/q8_0');
      withModel(artifact, config, 'wasm', (m) => {
        const o = oracle[0];
        if (!o) throw new Error('no oracle record');
        const prompt = o.promptIds;
        const a = m.session(prompt.length, true);
        let last: Float32Array = new Float32Array(0);
        for (const id of prompt) last = a.step(id);
        const fork = a.fork(prompt.length + 8);
        expect(fork.position).toBe(prompt.length);
        const fresh = m.session(prompt.length + 8);
        let lastFresh: Float32Array = new Float32Array(0);
        for (const id of prompt) lastFresh = fresh.step(id);
        for (let i = 0; i < 8; i++) {
          expect(Array.from(last)).toEqual(Array.from(lastFresh));
          const next = argmax(last);
          last = fork.step(next);
          lastFresh = fresh.step(next);
        }
        // The fork captures nothing; the original kept one row per position per layer.
        expect(fork.layerOutputs).toEqual([]);
        expect(a.layerOutputs.every((l) => l.length === prompt.length)).toBe(true);
        // The original session is full: it cannot be stepped past what it was opened for, the fork can.
        expect(() => a.step(0)).toThrow(/longer than/);
      });
    });
  }

  it('the adapter reads each prompt once: its greedy continuation equals the oracle, and capture off records nothing', async () => {
    const { sourceDir, oracle } = await prepare('qwen2-tiny');
    const artifact = convert('qwen2-tiny', sourceDir, 'gguf/f32');
    const req = {
      artifact,
      format: 'gguf' as const,
      sequences: oracle.map((o) => o.ids),
      maxNewTokens: MAX_NEW_TOKENS,
      promptLengths: oracle.map((o) => o.promptIds.length),
      captureLayers: false,
    };
    const run = runBundledEngine(req);
    if (run.status !== 'ok') throw new Error(run.message);
    run.sequences.forEach((s, i) => {
      expect(s.greedyIds).toEqual(oracle[i]?.greedyIds);
      expect(s.layerOutputs).toBeUndefined();
    });
  });
});

describe('agreement with llama.cpp on its own GGUFs does not get worse with the WASM kernels', () => {
  const FIXTURES = new URL('../fixtures/llamacpp/', import.meta.url).pathname;
  const golden = JSON.parse(readFileSync(`${FIXTURES}probs.json`, 'utf8')) as {
    tokens: number[];
    probs: Record<'f32' | 'q8_0' | 'q4_0', number[][]>;
  };
  const klOf = (type: 'f32' | 'q8_0' | 'q4_0', kernels: KernelChoice): { kl: number; top1: boolean } => {
    const src = new FileByteSource(`${FIXTURES}tiny-llama-${type}.gguf`);
    try {
      const m = new LlamaModel(readGguf(src), src, undefined, { kernels });
      const V = m.hp.vocab;
      const s = m.session(golden.tokens.length);
      const ours = new Float32Array(golden.tokens.length * V);
      golden.tokens.forEach((t, i) => ours.set(s.step(t), i * V));
      const theirs = Float32Array.from(golden.probs[type].flat().map((p) => Math.log(Math.max(p, 1e-38))));
      let top1 = true;
      for (let t = 0; t < golden.tokens.length; t++) {
        if (argmax(ours.subarray(t * V, (t + 1) * V)) !== argmax(theirs.subarray(t * V, (t + 1) * V))) top1 = false;
      }
      return { kl: mean(klPerRow(theirs, ours, V)), top1 };
    } finally {
      src.close();
    }
  };
  for (const type of ['f32', 'q8_0', 'q4_0'] as const) {
    it(`${type}: same top-1 everywhere, mean KL within 10% of the TS path's (or below 1e-7)`, () => {
      const ts = klOf(type, 'ts');
      const wasm = klOf(type, 'wasm');
      expect(wasm.top1).toBe(true);
      expect(wasm.kl).toBeLessThanOrEqual(Math.max(1.1 * ts.kl, 1e-7));
    });
  }
});
