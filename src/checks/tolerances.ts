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
}

/** Positions whose oracle top-2 logits are closer than this are near-ties and do not count for same-top-1. */
export const NEAR_TIE_LOGIT_MARGIN = 1e-2;

export const TOLERANCES: Record<TargetId, Tolerance> = {
  // f32: only summation order differs. NMSE 1e-7 is ggml test-backend-ops' default max_nmse_err;
  // KL ≤ 1e-6 from reference/parity-anchors.md §7 (llama.cpp f32 vs an exact pass: ~1e-7).
  'gguf/f32': { logitsNmseMax: 1e-7, klMeanMax: 1e-6, klP99Max: 1e-5, sameTop1Min: 1, extraZeroFractionMax: 0.4 },
  // q8_0: NMSE ≤ 1e-3 (parity-anchors §7 menu), KL mean ≤ 3e-3 / p99 ≤ 3e-2 (llama.cpp LLaMA-3-8B q8_0: 1.36e-3),
  // same top-1 ≥ 97% (llama.cpp q8_0: 97.7%).
  'gguf/q8_0': { logitsNmseMax: 1e-3, klMeanMax: 3e-3, klP99Max: 3e-2, sameTop1Min: 0.97, extraZeroFractionMax: 0.4 },
};
