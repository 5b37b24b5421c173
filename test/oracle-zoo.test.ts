/**
 * The oracle on every tiny model of the zoo, through the cached path the matrix uses (`oracleRecords`), against the
 * independent float64 forward passes: logits at every position of prompt + continuation within 1e-5 of the row's
 * largest |logit|, layer outputs likewise, and the greedy continuation equal to the float64 argmax chain.
 * Nothing here knows a vocabulary size, a token id or a weight: everything comes from the built model.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROMPTS } from '../src/config.js';
import { oracleRecords } from '../src/oracle/records.js';
import { onnxRuntimeVersion } from '../src/oracle/run.js';
import { buildModel } from '../src/zoo/build.js';
import { loadCheckpoint } from '../src/zoo/checkpoint.js';
import { listModelSpecs, type ModelSpec } from '../src/zoo/specs.js';
import { HfTokenizer } from '../src/zoo/tokenizer.js';
import { commonDims, isGpt2, type Checkpoint } from '../src/zoo/types.js';
import { gpt2ForwardF64 } from './reference/gpt2-f64.js';
import { forwardF64Detailed } from './reference/llama-f64.js';

const MAX_NEW = 32;
const REL_TOL = 1e-5;

function f64Forward(ckpt: Checkpoint, ids: number[]): { logits: Float64Array; hidden: Float64Array[] } {
  return isGpt2(ckpt.config) ? gpt2ForwardF64(ckpt, ids) : forwardF64Detailed(ckpt, ids);
}

function argmax(row: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (row[off + j]! > row[off + best]!) best = j;
  return best;
}

/** max|a − ref| / max|ref| over one row of width `width` starting at `off`. */
function rowRel(a: ArrayLike<number>, ref: ArrayLike<number>, off: number, width: number): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let j = 0; j < width; j++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[off + j]! - ref[off + j]!));
    maxRef = Math.max(maxRef, Math.abs(ref[off + j]!));
  }
  return maxDiff / maxRef;
}

/** Gap between the best and second-best logit of a row (to explain a greedy mismatch). */
function top2Gap(row: ArrayLike<number>, off: number, n: number): number {
  let a = -Infinity;
  let b = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = row[off + j]!;
    if (v > a) {
      b = a;
      a = v;
    } else if (v > b) b = v;
  }
  return a - b;
}

const isBuildable = (s: ModelSpec): boolean => s.kind !== 'checkpoint' || existsSync(join(s.dir, 'config.json'));
/** Shape-faithful models (`nightly`) are too big for this suite: the nightly matrix covers them. */
const isTiny = (s: ModelSpec): boolean => !(s.kind === 'seeded' && s.nightly === true);
const specs = listModelSpecs().filter(isTiny);

describe('zoo has models', () => {
  it('lists at least one buildable model', () => {
    expect(specs.filter(isBuildable).length).toBeGreaterThan(0);
  });
});

describe.each(specs.map((s) => [s.name, s] as const))('oracle vs float64 on zoo model %s', (name, spec) => {
  it.skipIf(!isBuildable(spec))('logits, layer outputs and greedy continuation match float64 for every default prompt', async () => {
    const dir = await buildModel(spec);
    const ckpt = loadCheckpoint(dir);
    const { vocab: V, hidden: H, layers: L } = commonDims(ckpt.config);
    const tokenizer = HfTokenizer.fromDir(dir);
    const promptIds = DEFAULT_PROMPTS.map((p) => tokenizer.encode(p));
    const records = await oracleRecords(dir, promptIds, MAX_NEW);
    expect(records).toHaveLength(DEFAULT_PROMPTS.length);

    let worstLogits = 0;
    let worstHidden = 0;
    for (const [i, r] of records.entries()) {
      const label = `${name} prompt ${JSON.stringify(DEFAULT_PROMPTS[i])}`;
      const P = promptIds[i]!.length;
      expect(r.promptIds, label).toEqual(promptIds[i]);
      expect(r.ids, label).toEqual([...promptIds[i]!, ...r.greedyIds]);
      expect(r.greedyIds, label).toHaveLength(MAX_NEW);
      expect(r.layerOutputs, label).toHaveLength(L);

      // The reference is exactly causal (row t reads ids[0..t] only), so one pass over the oracle's sequence holds the
      // float64 next-token logits of every prefix: greedy ids equal the float64 argmax chain iff they agree row by row.
      const ref = f64Forward(ckpt, r.ids);
      for (let k = 0; k < MAX_NEW; k++) {
        const row = (P - 1 + k) * V;
        const want = argmax(ref.logits, row, V);
        expect(r.greedyIds[k], `${label}: greedy step ${k} (f64 top-2 gap ${top2Gap(ref.logits, row, V).toExponential(2)})`).toBe(want);
      }
      let maxAbs = 0;
      for (const x of ref.logits) maxAbs = Math.max(maxAbs, Math.abs(x));
      expect(maxAbs, `${label}: logits are not flat`).toBeGreaterThan(1);
      for (let t = 0; t < r.ids.length; t++) {
        const rel = rowRel(r.logits, ref.logits, t * V, V);
        expect(rel, `${label} position ${t} logits`).toBeLessThanOrEqual(REL_TOL);
        worstLogits = Math.max(worstLogits, rel);
        for (let l = 0; l < L; l++) {
          const relH = rowRel(r.layerOutputs[l]!, ref.hidden[l]!, t * H, H);
          expect(relH, `${label} position ${t} hidden.${l}`).toBeLessThanOrEqual(REL_TOL);
          worstHidden = Math.max(worstHidden, relH);
        }
      }
    }
    console.log(
      `[oracle-zoo] ${name} (${ckpt.config.model_type}, V=${V}): max per-row rel Δ logits ${worstLogits.toExponential(2)}, hidden ${worstHidden.toExponential(2)} (ORT ${onnxRuntimeVersion()})`,
    );
  });
});
