/**
 * Cross-runtime claim (F-CROSS-RUNTIME-001): the same GGUF artifact, teacher-forced on the same ids through
 * the bundled engine and through llama.cpp (src/engines/llama-cpp.ts), gives the same next-token
 * distributions. It separates "the converter wrote a bad file" (both engines agree, both far from the
 * oracle) from "our engine reads the file differently from llama.cpp" (they disagree).
 */
import { statusOf } from './codes.js';
import type { MappedArch } from '../formats/name-map.js';
import { CATASTROPHIC, judgeHigher, judgeLower, judgementNote, RELATIVE_RATIO, type Baseline } from './bounds.js';
import type { CheckResult, Verdict } from './codes.js';
import { countNonFinite, klPerRow, mean, percentile, sameTop1 } from './metrics.js';
import { NEAR_TIE_FLOOR } from './tolerances.js';

/** How closely the two engines must agree on one artifact. */
export interface CrossRuntimeBounds {
  /** Mean over positions of KL(bundled ‖ llama.cpp), softmax in f64. */
  klMeanMax: number;
  /** Fraction of positions (bundled top-2 log-prob margin ≥ nearTieMargin) whose argmaxes agree. */
  sameTop1Min: number;
  /** A position whose bundled top-2 log-probability margin is below this is a near-tie, left out of top-1. */
  nearTieMargin: number;
  /** Where the numbers come from. */
  source: string;
}

/** Precision classes with their own bound: what the two engines may round differently. */
export type CrossRuntimeClass = 'f32' | 'f16' | 'bf16' | 'quantized';

/**
 * A near-tie margin that follows from the KL bound: for a small logit perturbation ε, KL ≈ ½·Var_p(ε), so a
 * position at the bound can carry perturbations of about √(2·KL); a top-2 margin below twice that can flip
 * under disagreement the bound accepts (the logits check's near-tie rule, tolerances.ts, in KL terms).
 */
export function crossRuntimeNearTie(klMeanMax: number): number {
  return Math.max(NEAR_TIE_FLOOR, 2 * Math.sqrt(2 * klMeanMax));
}

function bounds(klMeanMax: number, source: string): CrossRuntimeBounds {
  return { klMeanMax, sameTop1Min: 1, nearTieMargin: crossRuntimeNearTie(klMeanMax), source };
}

/**
 * Bounds per precision class and architecture. Measured on the zoo's reference-converted artifacts
 * (llama-tiny, qwen2-tiny, gpt2-tiny; the 4 default prompts + 32 oracle greedy tokens = 164 positions
 * each; node-llama-cpp 3.21.1, CPU, 1 thread, llama.cpp's default F16 K/V cache), mean KL(bundled ‖
 * llama.cpp), with max over positions for f32:
 *
 * | target | llama | qwen2 | gpt2 |
 * |---|---|---|---|
 * | f32 | 3.4e-8 (max 8.9e-7) | 1.0e-8 (max 6.9e-7) | 1.5e-8 (max 7.0e-7) |
 * | f16 | 2.7e-8 | 8.3e-9 | 1.4e-8 |
 * | bf16 | 8.7e-7 | 5.3e-7 | 7.7e-7 |
 * | q8_0 | 1.0e-5 | 1.0e-5 | 9.3e-6 |
 * | q6_k | 1.0e-5 | 1.0e-5 | 9.3e-6 |
 * | q5_0 / q5_1 | 1.8e-5 / 1.8e-5 | 1.1e-5 / 1.3e-5 | 1.2e-5 / 1.2e-5 |
 * | q4_0 / q4_1 / q4_k | 1.6e-5 / 3.6e-5 / 2.1e-5 | 4.6e-6 / 1.2e-5 / 5.3e-6 | 1.0e-5 / 1.5e-5 / 1.3e-5 |
 *
 * Same top-1 at every position that is not a near-tie, everywhere (0–5 near-ties of 164 per cell, the
 * quantized cells' only top-1 differences).
 */
export const CROSS_RUNTIME_BOUNDS: Record<CrossRuntimeClass, Record<MappedArch, CrossRuntimeBounds>> = {
  // f32: only summation order and llama.cpp's f16 K/V cache differ. 1e-6 for llama/qwen2 and 1e-5 for gpt2
  // (ggml evaluates GELU through an fp16 lookup table) from reference/parity-anchors.md §8, where llama.cpp
  // was measured against an exact f64 pass; measured here 30× to 600× below.
  f32: {
    llama: bounds(1e-6, 'parity-anchors.md §8 (llama.cpp vs exact: ~1e-7); measured 3.4e-8'),
    qwen2: bounds(1e-6, 'parity-anchors.md §8 (llama.cpp vs exact: 2.0e-7); measured 1.0e-8'),
    gpt2: bounds(1e-5, 'parity-anchors.md §8 (llama.cpp vs exact: 1.4e-6, fp16 GELU table); measured 1.5e-8'),
  },
  // f16: ggml rounds the activations to f16 for an F16 matmul (vec_dot_type F16); measured no worse than f32.
  f16: {
    llama: bounds(1e-6, 'as f32; measured 2.7e-8'),
    qwen2: bounds(1e-6, 'as f32; measured 8.3e-9'),
    gpt2: bounds(1e-5, 'as f32; measured 1.4e-8'),
  },
  // bf16: ggml rounds the activations to bf16 for a BF16 matmul (8 mantissa bits), the bundled engine keeps
  // them in f32: an order above f32. 2e-5 is ~20× the worst measured (llama 8.7e-7; gpt2 was 2.3e-6 on an
  // earlier gpt2-tiny).
  bf16: {
    llama: bounds(2e-5, 'bf16 activation rounding in ggml; measured 8.7e-7'),
    qwen2: bounds(2e-5, 'bf16 activation rounding in ggml; measured 5.3e-7'),
    gpt2: bounds(2e-5, 'bf16 activation rounding in ggml; measured 7.7e-7'),
  },
  // Block-quantized weights: both engines read the same blocks, so weight quantization cancels; what
  // remains is each engine's own rounding of the *activations* (ggml quantizes each matmul input row to
  // Q8_0/Q8_1/Q8_K for its integer dot products), and a tiny upstream difference flips a rounding decision.
  // That noise does not depend on the weight bit width (measured 4.6e-6–3.6e-5 from q8_0 down to q4_0, and
  // 4.2e-5 on an earlier gpt2-tiny) and sits up to 100× below each type's own quantization effect
  // (KL(oracle ‖ llama.cpp) 1.1e-5–4.8e-3), so one bound fits them all: 2e-4, ~5× the worst measured, and
  // 15× below the q8_0 logits bound (3e-3) that each engine must meet against the oracle. An engine that
  // misreads a quantized block lands far above it (one ffn_down off by 2× on llama-tiny: mean KL ~3e-3).
  quantized: {
    llama: bounds(2e-4, 'activation-quantization noise; measured ≤ 3.6e-5 over q8_0/q6_k/q5_*/q4_*'),
    qwen2: bounds(2e-4, 'activation-quantization noise; measured ≤ 1.3e-5 over q8_0/q6_k/q5_*/q4_*'),
    gpt2: bounds(2e-4, 'activation-quantization noise; measured ≤ 1.5e-5 over q8_0/q6_k/q5_*/q4_* (4.2e-5 on an earlier gpt2-tiny)'),
  },
};

/** The precision class of a target id (`gguf/q8_0`) or type (`q8_0`, `f32`). */
export function crossRuntimeClass(target: string): CrossRuntimeClass {
  const type = target.slice(target.lastIndexOf('/') + 1).toLowerCase();
  return type === 'f32' || type === 'f16' || type === 'bf16' ? type : 'quantized';
}

/** The bounds for an artifact of this architecture and target. */
export function crossRuntimeBounds(arch: MappedArch, target: string): CrossRuntimeBounds {
  return CROSS_RUNTIME_BOUNDS[crossRuntimeClass(target)][arch];
}

/**
 * F-CROSS-RUNTIME-001 for one prompt: the bundled engine's logits and llama.cpp's (its raw logits through the C API,
 * or log p on the node-llama-cpp fallback; log-softmax makes either comparable) at every position of the
 * same teacher-forced ids. Fails when the mean KL(bundled ‖ llama.cpp) exceeds the bound, when the top-1
 * tokens differ at a position that is not a near-tie, or when either side has NaN/Inf or a different shape.
 */
export function checkCrossRuntime(
  prompt: string,
  bundledLogits: Float32Array,
  llamaCppLogProbs: Float32Array,
  vocab: number,
  b: CrossRuntimeBounds,
  baseline: Baseline = { absoluteIsHard: true },
): CheckResult {
  const fail = (message: string, evidence: Record<string, unknown>): CheckResult => ({
    suite: 'cross-runtime',
    prompt,
    status: 'fail',
    verdicts: [{ code: 'F-CROSS-RUNTIME-001', status: 'fail', message, evidence }],
  });
  if (bundledLogits.length !== llamaCppLogProbs.length || bundledLogits.length % vocab !== 0) {
    return fail(`bundled engine gave ${bundledLogits.length} values, llama.cpp ${llamaCppLogProbs.length} (vocab ${vocab})`, {
      metric: 'values',
      got: llamaCppLogProbs.length,
      bound: bundledLogits.length,
      minPassingBound: null,
      bundled: bundledLogits.length,
      llamaCpp: llamaCppLogProbs.length,
      vocab,
    });
  }
  const nonFinite = { bundled: countNonFinite(bundledLogits), llamaCpp: countNonFinite(llamaCppLogProbs) };
  if (nonFinite.bundled > 0 || nonFinite.llamaCpp > 0) {
    return fail(`NaN/Inf: ${nonFinite.bundled} in the bundled engine's logits, ${nonFinite.llamaCpp} in llama.cpp's log-probabilities`, {
      metric: 'nonFinite',
      got: nonFinite.bundled + nonFinite.llamaCpp,
      bound: 0,
      minPassingBound: nonFinite.bundled + nonFinite.llamaCpp,
      ...nonFinite,
    });
  }
  const kl = klPerRow(bundledLogits, llamaCppLogProbs, vocab);
  const klMean = mean(kl);
  const klMax = Math.max(0, ...kl);
  const top = sameTop1(bundledLogits, llamaCppLogProbs, vocab, () => b.nearTieMargin);
  const verdicts: Verdict[] = [];
  // On the reference converter's file of the same model and target the two engines disagree by some amount (llama.cpp
  // keeps its KV cache and some intermediates in f16, an error that grows with activation magnitude): a candidate's file
  // may make them disagree by RELATIVE_RATIO times that before the file is to blame.
  const j = judgeLower(klMean, b.klMeanMax, baseline, 'klMean', (ref) => RELATIVE_RATIO * ref, CATASTROPHIC.klMean);
  if (j.status !== 'pass') {
    const exp = (v: number) => v.toExponential(2);
    verdicts.push({
      code: 'F-CROSS-RUNTIME-001',
      status: j.status,
      message: `bundled engine and llama.cpp disagree: mean KL ${exp(klMean)} > ${exp(j.bound)} (worst position ${kl.indexOf(klMax)}: ${exp(klMax)})${judgementNote(j, exp)}`,
      evidence: {
        metric: 'klMean',
        got: klMean,
        bound: j.bound,
        minPassingBound: klMean,
        basis: j.basis,
        referenceValue: j.referenceValue ?? null,
        klMax,
        worstPosition: kl.indexOf(klMax),
        klPerPosition: kl,
        absoluteBound: b.klMeanMax,
        boundSource: b.source,
      },
    });
  }
  const jTop = judgeHigher(top.rate, b.sameTop1Min, baseline, 'sameTop1');
  if (jTop.status !== 'pass') {
    verdicts.push({
      code: 'F-CROSS-RUNTIME-001',
      status: jTop.status,
      message: `bundled engine and llama.cpp pick different top-1 tokens at ${top.mismatchedRows.length} of ${top.counted} positions (first: ${top.mismatchedRows[0]})`,
      evidence: {
        metric: 'sameTop1',
        got: top.rate,
        bound: b.sameTop1Min,
        minPassingBound: top.rate,
        positions: top.counted,
        mismatchedPositions: top.mismatchedRows,
        nearTiesExcluded: top.nearTies,
        nearTieMargin: b.nearTieMargin,
      },
    });
  }
  const metrics = { klMean, klP99: percentile(kl, 99), klMax, sameTop1: top.rate, positions: kl.length, nearTiesExcluded: top.nearTies };
  return { suite: 'cross-runtime', prompt, status: statusOf(verdicts), verdicts, metrics };
}
