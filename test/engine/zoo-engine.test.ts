import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nmse } from '../../src/checks/metrics.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { runBundledEngine } from '../../src/engines/bundled.js';
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

async function convertedF32(model: string) {
  const sourceDir = await buildModel(findModelSpec(model));
  const tok = HfTokenizer.fromDir(sourceDir);
  const oracle = await oracleRecords(
    sourceDir,
    DEFAULT_PROMPTS.map((p) => tok.encode(p)),
    MAX_NEW_TOKENS,
  );
  const artifact = join(workDir, `${model}.f32.gguf`);
  convertCheckpoint(sourceDir, parseTarget('gguf/f32'), artifact);
  return { sourceDir, oracle, artifact };
}

describe('bundled engine vs the f32 oracle on the reference converter’s gguf/f32 artifact', () => {
  for (const model of ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const) {
    it(`${model}: logits and layer outputs at NMSE ≤ ${LOGITS_NMSE_MAX} on every prompt; greedy continuation equal`, async () => {
      const { oracle, artifact } = await convertedF32(model);
      const run = runBundledEngine({
        artifact,
        format: 'gguf',
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
      for (const kv of plan.kvs) {
        if (kv.key === 'general.architecture') kv.value = 'mamba';
        else if (kv.key.startsWith('llama.')) kv.key = `mamba.${kv.key.slice('llama.'.length)}`;
      }
    });
    const run = runBundledEngine({ artifact, format: 'gguf', sequences: [[1, 2, 3]], maxNewTokens: 0, promptLengths: [3], captureLayers: false });
    expect(run.status).toBe('failed');
    if (run.status === 'failed') expect(run.message).toMatch(/general\.architecture is "mamba"/);
  });
});
