import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nmse } from '../../src/checks/metrics.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { matvec, storedRow, TensorTable, type TensorNames } from '../../src/engine/weights.js';
import { runBundledEngine } from '../../src/engines/bundled.js';
import { readApr } from '../../src/formats/apr/reader.js';
import { aprTensorFromF32, encodeApr } from '../../src/formats/apr/writer.js';
import { BufferByteSource } from '../../src/formats/byte-source.js';
import { dequantize } from '../../src/formats/codecs/index.js';
import { oracleRecords } from '../../src/oracle/records.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-zoo-engine-'));

/** Same prompts and continuation length as `tmgt check`, so the oracle records come from the same cache entry. */
const MAX_NEW_TOKENS = 32;

// The engine is judged against the f32 oracle at ggml test-backend-ops' default NMSE bound (DESIGN.md §6).
const LOGITS_NMSE_MAX = 1e-7;
// Layer outputs are residual streams; the same class of agreement, with room for their smaller norms.
const LAYER_NMSE_MAX = 1e-7;

async function convertedAt(model: string, target: 'gguf/f32' | 'apr/f32' | 'safetensors/bf16') {
  const sourceDir = await buildModel(findModelSpec(model));
  const tok = HfTokenizer.fromDir(sourceDir);
  const oracle = await oracleRecords(
    sourceDir,
    DEFAULT_PROMPTS.map((p) => tok.encode(p)),
    MAX_NEW_TOKENS,
  );
  const t = parseTarget(target);
  const artifact = join(workDir, `${model}.${t.type}.${t.format}`);
  convertCheckpoint(sourceDir, t, artifact);
  return { sourceDir, oracle, artifact };
}

describe('bundled engine vs the f32 oracle on the reference converter’s f32 artifacts (GGUF layout and HF layout)', () => {
  // apr/f32 holds HF names and layout: llama/qwen2 unpermuted with NEOX RoPE, GPT-2's Conv1D weights [in, out].
  for (const [model, target] of (['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const).flatMap((m) =>
    (['gguf/f32', 'apr/f32'] as const).map((t) => [m, t] as const),
  )) {
    it(`${model} × ${target}: logits and layer outputs at NMSE ≤ ${LOGITS_NMSE_MAX} on every prompt; greedy continuation equal`, async () => {
      const { oracle, artifact } = await convertedAt(model, target);
      const run = runBundledEngine({
        artifact,
        format: parseTarget(target).format,
        sequences: oracle.map((o) => o.ids),
        maxNewTokens: MAX_NEW_TOKENS,
        promptLengths: oracle.map((o) => o.promptIds.length),
        captureLayers: true,
      });
      if (run.status !== 'ok') throw new Error(run.message);
      oracle.forEach((o, i) => {
        const got = run.sequences[i];
        if (!got) throw new Error(`no result for prompt ${i}`);
        expect(got.logits.length).toBe(o.logits.length);
        expect(nmse(o.logits, got.logits), `${DEFAULT_PROMPTS[i]}: logits`).toBeLessThanOrEqual(LOGITS_NMSE_MAX);
        expect(got.layerOutputs).toHaveLength(o.layerOutputs.length);
        o.layerOutputs.forEach((layer, l) => {
          const mine = got.layerOutputs?.[l] ?? new Float32Array(0);
          expect(nmse(layer, mine), `${DEFAULT_PROMPTS[i]}: layer ${l}`).toBeLessThanOrEqual(LAYER_NMSE_MAX);
        });
        // Decoding with the KV cache reproduces the oracle's full-recompute greedy continuation.
        expect(got.greedyIds, DEFAULT_PROMPTS[i]).toEqual(o.greedyIds);
      });
    }, 120_000);
  }

  it('an architecture the engine does not run is an engine failure (→ F-RUNTIME-002), not a throw', async () => {
    const sourceDir = await buildModel(findModelSpec('llama-tiny'));
    const artifact = join(workDir, 'unknown-arch.gguf');
    convertCheckpoint(sourceDir, parseTarget('gguf/f32'), artifact, (plan) => {
      if (plan.format !== 'gguf') throw new Error('a GGUF plan was expected');
      for (const kv of plan.kvs) {
        if (kv.key === 'general.architecture') kv.value = 'mamba';
        else if (kv.key.startsWith('llama.')) kv.key = `mamba.${kv.key.slice('llama.'.length)}`;
      }
    });
    const run = runBundledEngine({
      artifact,
      format: 'gguf',
      sequences: [[1, 2, 3]],
      maxNewTokens: 0,
      promptLengths: [3],
      captureLayers: false,
    });
    expect(run.status).toBe('failed');
    if (run.status === 'failed') expect(run.message).toMatch(/general\.architecture is "mamba"/);
  });

  it('safetensors carries no hyperparameters: the engine reads them from the source config.json, and fails without it', async () => {
    const { sourceDir, oracle, artifact } = await convertedAt('gpt2-tiny', 'safetensors/bf16');
    const req = {
      artifact,
      format: 'safetensors' as const,
      sequences: oracle.map((o) => o.ids),
      maxNewTokens: 0,
      promptLengths: oracle.map((o) => o.promptIds.length),
      captureLayers: false,
    };
    const run = runBundledEngine({ ...req, configPath: join(sourceDir, 'config.json') });
    if (run.status !== 'ok') throw new Error(run.message);
    // bf16 weights: the bf16 logits bound (tolerances.ts), far from a broken layout.
    oracle.forEach((o, i) => expect(nmse(o.logits, run.sequences[i]?.logits ?? new Float32Array(0))).toBeLessThan(1e-4));
    const without = runBundledEngine(req);
    expect(without.status).toBe('failed');
    if (without.status === 'failed') expect(without.message).toMatch(/config\.json/);
  });
});

describe('weights computed from APR blocks, stored [out, in] or [in, out]', () => {
  // 3 × 50: rows do not align with APR Q4's 32-blocks over the flattened tensor.
  const [R, C] = [3, 50];
  const values = Float32Array.from({ length: R * C }, (_, i) => Math.sin(0.7 * i) * (1 + (i % 7)));
  const x = Float32Array.from({ length: C }, (_, i) => Math.cos(0.3 * i));
  const xt = Float32Array.from({ length: R }, (_, i) => 1 - i);
  for (const dtype of ['APR_Q8', 'APR_Q4', 'F32', 'F16'] as const) {
    it(`${dtype}: every stored row decodes as the whole-tensor decoder does; W·x and Conv1D x·W match the dense product`, () => {
      const bytes = encodeApr({ tensors: [aprTensorFromF32('w', [R, C], values, dtype)] });
      const src = new BufferByteSource(bytes);
      const file = readApr(src);
      const entry = file.tensors[0];
      if (!entry) throw new Error('no tensor');
      const dense = dequantize(dtype, bytes.subarray(entry.offset, entry.offset + entry.byteLength), R * C);
      const plain: TensorNames = { layout: 'hf', resolve: (role) => ({ candidates: [role], isTransposed: false }) };
      const conv1d: TensorNames = { layout: 'hf', resolve: (role) => ({ candidates: [role], isTransposed: true }) };
      const w = new TensorTable(file, src, plain).weight('w', R, C);
      for (let r = 0; r < R; r++) expect(Array.from(storedRow(w, r))).toEqual(Array.from(dense.subarray(r * C, (r + 1) * C)));
      const out = new Float32Array(R);
      matvec(w, x, out);
      for (let r = 0; r < R; r++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += (dense[r * C + c] as number) * (x[c] as number);
        expect(out[r]).toBeCloseTo(s, 4);
      }
      // The same bytes as a Conv1D weight [in = R, out = C]: y = x·W.
      const wt = new TensorTable(file, src, conv1d).weight('w', C, R);
      const y = new Float32Array(C);
      matvec(wt, xt, y);
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let r = 0; r < R; r++) s += (xt[r] as number) * (dense[r * C + c] as number);
        expect(y[c]).toBeCloseTo(s, 4);
      }
    });
  }
});
