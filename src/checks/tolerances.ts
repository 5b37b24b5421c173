import type { TargetId } from '../converters/targets.js';

/** Bounds for one target. Every number carries its source; calibrated against the reference converter. */
export interface Tolerance {
  /** Σ(c−r)²/Σr² over all logits of a prompt. */
  logitsNmseMax: number;
  /** Mean and 99th-percentile KL(oracle ‖ candidate) per position, softmax in f64. */
  klMeanMax: number;
  klP99Max: number;
  /** Fraction of positions (oracle top-1 margin ≥ nearTieLogitMargin) where both argmaxes agree. */
  sameTop1Min: number;
  /** How much the zero fraction of a tensor may exceed its source's before F-DATA-QUALITY-001. */
  extraZeroFractionMax: number;
  /** L4: minimum SQNR (dB) of every dequantized 2-D weight against its source (F-FIDELITY-001); Infinity = exact. */
  weightSqnrMinDb: number;
  /** L6: greedy tokens (of 32) that may differ from the oracle's continuation (F-TOKENS-002); 0 = canary, must be exact (F-TOKENS-001). */
  greedyMismatchMax: number;
}

/**
 * Near-ties do not count for same-top-1: a position whose oracle top-2 logit margin is smaller than
 * 2·√(logitsNmseMax)·rms(row) — twice the per-logit error the target's own NMSE bound allows — can
 * flip under an error the bound accepts (llama.cpp and Polygraphy likewise skip near-ties, reference/
 * parity-anchors.md §7). The floor keeps exact ties out at f32.
 */
export const NEAR_TIE_FLOOR = 1e-3;
export function nearTieMargin(tol: Tolerance, rowRms: number): number {
  return Math.max(NEAR_TIE_FLOOR, 2 * Math.sqrt(tol.logitsNmseMax) * rowRms);
}

export const TOLERANCES: Record<TargetId, Tolerance> = {
  // f32: only summation order differs. NMSE 1e-7 is ggml test-backend-ops' default max_nmse_err;
  // KL ≤ 1e-6 from reference/parity-anchors.md §7 (llama.cpp f32 vs an exact pass: ~1e-7).
  'gguf/f32': { logitsNmseMax: 1e-7, klMeanMax: 1e-6, klP99Max: 1e-5, sameTop1Min: 1, extraZeroFractionMax: 0.4, weightSqnrMinDb: Infinity, greedyMismatchMax: 0 },
  // q8_0: NMSE ≤ 1e-3 (parity-anchors §7 menu), KL mean ≤ 3e-3 / p99 ≤ 3e-2 (llama.cpp LLaMA-3-8B q8_0: 1.36e-3),
  // same top-1 ≥ 97% (llama.cpp q8_0: 97.7%).
  // Weight SQNR ≥ 40 dB (torchao int8 weight-only; simulated Q8_0 45–48 dB); greedy ≤ 3/32 (the Python harness's Int8 bound).
  'gguf/q8_0': { logitsNmseMax: 1e-3, klMeanMax: 3e-3, klP99Max: 3e-2, sameTop1Min: 0.97, extraZeroFractionMax: 0.4, weightSqnrMinDb: 40, greedyMismatchMax: 3 },
};
