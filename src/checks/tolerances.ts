import type { TargetId } from '../contracts/targets.js';

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
  /** L4: minimum SQNR (dB) of every dequantized tensor against its source (F-FIDELITY-001; F32-stored ones must be exact); Infinity = exact. */
  weightSqnrMinDb: number;
  /** L6: greedy tokens (of 32) that may differ from the oracle's continuation (F-TOKENS-002); 0 = canary, must be exact (F-TOKENS-001). */
  greedyMismatchMax: number;
  /** Perplexity on held-out text: PPL(candidate) / PPL(oracle) − 1 at most this (F-LOGITS-005). */
  pplExcessMax: number;
}

/**
 * F-FIDELITY-001 judges a tensor by the type the file stores it in: the harness quantizes the source tensor with its own
 * bit-exact codec of that type (byte-identical to ggml's reference quantizers and aprender's writer, test/formats) and
 * the candidate's SQNR must be within this margin of that reference SQNR. A converter that stores the same type the way
 * llama.cpp does reaches it exactly (0 dB: llama.cpp's own quantizer writes the same blocks); the margin admits other
 * correct rounding choices (round-half-even vs away: < 0.01 dB measured on the zoo) while catching a coarser scale
 * (a bf16-rounded Q8_0 scale loses 0.3–0.5 dB per tensor; the q8-scale-bf16 mutant). Blocks that differ from the
 * reference quantizer's are reported, never judged: an importance-matrix quantizer legitimately picks others.
 */
export const FIDELITY_MARGIN_DB = 0.25;

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

/*
 * Calibration (reference converter, tiny zoo: llama-tiny, qwen2-tiny, gpt2-tiny; DEFAULT_PROMPTS with the
 * oracle's 32-token continuations; bundled engine). "worst" is the worst value over the three models and
 * four prompts; the margin is bound / worst (or bound − worst in dB). Sources of the starting points:
 * DESIGN.md §4 and reference/parity-anchors.md §1 (llama.cpp KLD / same-top tables), §7 (metric menu,
 * simulated weight SQNR), §3/§5 (torchao int8 ≥ 35–40 dB), llama.cpp examples/model-conversion
 * check-nmse.py (NMSE < 1e-2 passes).
 *
 * Weight SQNR is judged on what the file really holds: at q4_k the zoo's rows (96, 128, 224) do not
 * divide into 256-blocks, so llama-quantize falls back to Q5_0 (and Q8_0 for output / use_more_bits
 * tensors), and at q6_k everything is Q8_0. Their bounds are the Q5_0 and Q8_0 ones. A model whose
 * rows do divide (SmolLM's ffn_down, 1536) holds real Q4_K / Q6_K: measured on the zoo's weights
 * (flattened) Q4_K reaches 22.8 dB and Q6_K 34.8 dB, so such a model needs a per-model override
 * (q4_k ≈ 20, q6_k ≈ 31).
 *
 * SQNR is every tensor's (F-FIDELITY-001 scores 1-D tensors too; F32 ones must be bit-exact).
 *
 * greedyMismatchMax: the reference's free-running greedy continuations DO diverge from the oracle's at
 * the quantized targets — always at a near-tie of the oracle: llama-tiny prompt 0 at step 17, top-2
 * margin 0.0045 logits (rms 3.65), at every GGUF quantized target; the largest margin at any divergence
 * is 0.30 logits (q4_1) against near-tie margins of 0.23 (q8_0) to 1.6 (q4_0) for these bounds. Counting
 * every differing token after a divergence, the reference itself has 15/32 (q8_0, llama-tiny), 23/32
 * (apr/int8, Q5 class, Q4 class) and 31/32 (apr/int4): the bounds below hold because checkTokens
 * (tokens.ts) stops counting at a divergence where the oracle's top-2 margin is below `nearTieMargin`;
 * the reference then has 0 everywhere, and f32/f16/bf16 never diverge at all. The integer bounds are the
 * starting points (DESIGN.md §4), f16/bf16 and the Q5 class interpolated.
 */

/**
 * Perplexity on held-out text (models/heldout.txt, its first documents, ~500 tokens; F-LOGITS-005), the way llama.cpp's
 * `llama-perplexity` reports quantization loss: the candidate's PPL over the oracle's, minus 1. Starting points from
 * llama.cpp's published PPL increases (Q8_0 +0.01 %, Q5 +0.3–1 %, Q4_0 +2–5 % on 7B models; parity-anchors §1) widened for
 * tiny models, which lose relatively more.
 */
const PPL_EXCESS = { f32: 1e-4, f16: 1e-3, bf16: 5e-3, q8_0: 1e-2, q5: 5e-2, q4: 0.15, apr_int8: 2e-2, apr_int4: 0.3 } as const;

/** f32 (gguf/f32, apr/f32): only summation order differs. Worst: NMSE 2.4e-13, KL 4.0e-13, p99 3.6e-12, top-1 100%, greedy 0. */
const F32: Tolerance = {
  // ggml test-backend-ops' default max_nmse_err.
  logitsNmseMax: 1e-7,
  // parity-anchors §7 (llama.cpp f32 vs an exact pass: ~1e-7); p99 10× the mean.
  klMeanMax: 1e-6,
  klP99Max: 1e-5,
  sameTop1Min: 1,
  // F-DATA-QUALITY-001: worst extra zero fraction over all targets is +14.0% (apr/int4), 2.9× below;
  // the lm-head-zeros mutant is +100%.
  extraZeroFractionMax: 0.4,
  weightSqnrMinDb: Infinity,
  // Canary: must be exact (F-TOKENS-001).
  greedyMismatchMax: 0,
  pplExcessMax: PPL_EXCESS.f32,
};

/**
 * f16 (gguf/f16, apr/f16, safetensors/f16). Worst: NMSE 2.5e-7 (40× below), KL 5.5e-8, p99 9.5e-7,
 * top-1 100%, SQNR 73.5 dB on 2-D weights and 71.2 dB on the 1-D tensors APR/safetensors store in f16
 * (6.2 dB above), greedy 0.
 */
const F16: Tolerance = {
  // parity-anchors §7 menu: NMSE ≤ 1e-5, KL ≤ 1e-4 (p99 10× the mean), same top-1 ≥ 99.5%, SQNR ≥ 65 (sim 74).
  logitsNmseMax: 1e-5,
  klMeanMax: 1e-4,
  klP99Max: 1e-3,
  sameTop1Min: 0.995,
  extraZeroFractionMax: 0.4,
  weightSqnrMinDb: 65,
  // Between f32's canary and q8_0's 3: a late near-tie flip is tolerated.
  greedyMismatchMax: 2,
  pplExcessMax: PPL_EXCESS.f16,
};

/**
 * bf16 (gguf/bf16, safetensors/bf16). Worst: NMSE 1.6e-5 (6.4× below), KL 3.3e-6 (30×), p99 8.4e-5 (12×),
 * top-1 100%, SQNR 55.5 dB on 2-D weights and 53.0 dB on safetensors' bf16 1-D tensors (3.0 dB above),
 * greedy 0.
 */
const BF16: Tolerance = {
  // parity-anchors §7: NMSE ≤ 1e-4 for bf16, KL ≤ 1e-4 (llama.cpp BF16-vs-FP16 on LLaMA-3-8B: 2.5e-5), SQNR ≥ 50 (sim 56).
  logitsNmseMax: 1e-4,
  klMeanMax: 1e-4,
  klP99Max: 1e-3,
  sameTop1Min: 0.995,
  extraZeroFractionMax: 0.4,
  weightSqnrMinDb: 50,
  greedyMismatchMax: 2,
  pplExcessMax: PPL_EXCESS.bf16,
};

/**
 * Q8_0 (gguf/q8_0; gguf/q6_k, which holds only Q8_0 in the zoo). Worst: NMSE 2.3e-4 (4.4× below),
 * KL 4.5e-5 (67×), p99 1.0e-3 (30×), top-1 100%, weight SQNR 45.2 dB (5.2 dB above).
 */
const Q8_0: Tolerance = {
  // NMSE ≤ 1e-3 (parity-anchors §7 menu); KL mean ≤ 3e-3 / p99 ≤ 3e-2 (llama.cpp LLaMA-3-8B q8_0: 1.36e-3);
  // same top-1 ≥ 97% (llama.cpp q8_0: 97.7%); SQNR ≥ 40 (torchao int8 weight-only; sim 45–48).
  logitsNmseMax: 1e-3,
  klMeanMax: 3e-3,
  klP99Max: 3e-2,
  sameTop1Min: 0.97,
  extraZeroFractionMax: 0.4,
  weightSqnrMinDb: 40,
  // The Python harness's Int8 bound (see the greedy note above).
  greedyMismatchMax: 3,
  pplExcessMax: PPL_EXCESS.q8_0,
};

/**
 * APR int8 (one scale per tensor, not per 32-block): logits like Q8_0, weights coarser. Worst: NMSE 3.1e-4
 * (3.2× below), KL 6.5e-5 (46×), p99 8.4e-4 (36×), top-1 100%, weight SQNR 38.1 dB (wpe, gpt2-tiny; 3.1 dB
 * above 35 — it fails Q8_0's 40, as per-tensor int8 must).
 */
const APR_INT8: Tolerance = {
  ...Q8_0,
  weightSqnrMinDb: 35 /* torchao int8 dynamic quantization minimum */,
  pplExcessMax: PPL_EXCESS.apr_int8,
};

/**
 * The Q5 class: gguf/q5_0, gguf/q5_1, and gguf/q4_k (Q5_0 + Q8_0 in the zoo after llama-quantize's
 * fallbacks). Worst: NMSE 4.9e-3 (qwen2 q5_0; 2.0× below), KL 1.1e-3 (9×), p99 3.5e-2 (llama q5_0; 2.9×),
 * top-1 100%, weight SQNR 27.2 dB (3.2 dB above).
 */
const Q5: Tolerance = {
  // check-nmse.py's pass line (NMSE < 1e-2); KL ≤ 1e-2 is below llama.cpp's q4_K_M (0.031, LLaMA-3-8B), p99 10× the mean;
  // same top-1 ≥ 90% (llama.cpp q4_K_M: 91.9%); SQNR ≥ 24: Q4_0's 18 plus the 6 dB one more bit buys (sim).
  logitsNmseMax: 1e-2,
  klMeanMax: 1e-2,
  klP99Max: 0.1,
  sameTop1Min: 0.9,
  extraZeroFractionMax: 0.4,
  weightSqnrMinDb: 24,
  // Between Q8_0's 3 and Q4_0's 5.
  greedyMismatchMax: 4,
  pplExcessMax: PPL_EXCESS.q5,
};

/**
 * The Q4 class: gguf/q4_0, gguf/q4_1. Worst: NMSE 2.1e-2 (qwen2 q4_0; 2.4× below — it fails the menu's
 * 2e-2), KL 1.25e-2 (llama q4_1; 8×), p99 0.24 (4.2×), top-1 100%, weight SQNR 21.1 dB (3.1 dB above).
 */
const Q4: Tolerance = {
  // KL mean ≤ 0.1 / p99 ≤ 1 (parity-anchors §7; llama.cpp q4_0 0.072), same top-1 ≥ 85%, SQNR ≥ 18 (sim 21–24).
  logitsNmseMax: 5e-2,
  klMeanMax: 0.1,
  klP99Max: 1,
  sameTop1Min: 0.85,
  extraZeroFractionMax: 0.4,
  weightSqnrMinDb: 18,
  // The Python harness's Int4 bound.
  greedyMismatchMax: 5,
  pplExcessMax: PPL_EXCESS.q4,
};

/**
 * APR int4 (symmetric, scale max/7, 15 levels, blocks over the flattened tensor: coarser than Q4_0).
 * Worst: NMSE 3.2e-2 (llama; 3.2× below), KL 2.9e-2 (llama; 3.5×), p99 0.63 (llama; 3.2× below 2),
 * top-1 100%, weight SQNR 20.1 dB (3.1 dB above 17).
 */
const APR_INT4: Tolerance = { ...Q4, logitsNmseMax: 0.1, klP99Max: 2, weightSqnrMinDb: 17, pplExcessMax: PPL_EXCESS.apr_int4 };

export const TOLERANCES: Record<TargetId, Tolerance> = {
  'gguf/f32': F32,
  'gguf/f16': F16,
  'gguf/bf16': BF16,
  'gguf/q8_0': Q8_0,
  'gguf/q4_0': Q4,
  'gguf/q4_1': Q4,
  'gguf/q5_0': Q5,
  'gguf/q5_1': Q5,
  'gguf/q4_k': Q5,
  'gguf/q6_k': Q8_0,
  'apr/f32': F32,
  'apr/f16': F16,
  'apr/int8': APR_INT8,
  'apr/int4': APR_INT4,
  'safetensors/f16': F16,
  'safetensors/bf16': BF16,
};
