/**
 * Nightly (TMGT_NIGHTLY=1, `make nightly`): the oracle of each shape-faithful model (SmolLM-135M,
 * Qwen2-0.5B, GPT-2 124M shapes) against the independent float64 pass on one prompt, every position:
 * max |Δlogit| ≤ 1e-5 · max |logit|. Too heavy for CI (builds up to 2 GB, ORT graphs up to 1.98 GB).
 */
import { describe, expect, it } from 'vitest';
import { runOracle } from '../../src/oracle/run.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';
import { commonDims, isGpt2 } from '../../src/zoo/types.js';
import { gpt2ForwardF64 } from '../reference/gpt2-f64.js';
import { forwardF64 } from '../reference/llama-f64.js';

const PROMPT = 'The capital of France is';

describe('shape-faithful oracles vs float64 (nightly)', () => {
  for (const name of ['gpt2-124m-shape', 'smollm-135m-shape', 'qwen2-0.5b-shape']) {
    it(`${name}: one prompt, every position within 1e-5 relative`, { timeout: 1_800_000 }, async () => {
      const dir = await buildModel(findModelSpec(name));
      const ids = HfTokenizer.fromDir(dir).encode(PROMPT);
      let ckpt = loadCheckpoint(dir);
      const [record] = await runOracle(ckpt, [ids], { maxNewTokens: 1 });
      if (!record) throw new Error('no oracle record');
      const V = commonDims(ckpt.config).vocab;
      const seq = record.ids.slice(0, ids.length);
      const ref = isGpt2(ckpt.config) ? gpt2ForwardF64(ckpt, seq).logits : forwardF64(ckpt, seq);
      ckpt = undefined as never;
      let worst = 0;
      for (let t = 0; t < seq.length; t++) {
        let maxDiff = 0;
        let maxRef = 0;
        for (let j = 0; j < V; j++) {
          maxDiff = Math.max(maxDiff, Math.abs((record.logits[t * V + j] as number) - (ref[t * V + j] as number)));
          maxRef = Math.max(maxRef, Math.abs(ref[t * V + j] as number));
        }
        worst = Math.max(worst, maxDiff / maxRef);
      }
      console.log(`${name}: ${seq.length} positions, worst max|Δ|/max|logit| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(1e-5);
    });
  }
});
