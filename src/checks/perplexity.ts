/**
 * Perplexity on held-out text (F-LOGITS-005): the candidate's and the oracle's next-token log-likelihood over the same
 * teacher-forced sequences, as llama.cpp's `llama-perplexity` measures quantization loss. Judged by the PPL ratio minus 1
 * (the "excess"), against the target's bound or, for another converter, against what the reference converter reaches.
 */
import { CATASTROPHIC_PPL_EXCESS, judgeLower, judgementNote, RELATIVE_RATIO, type Baseline } from './bounds.js';
import { statusOf, type CheckResult, type Verdict } from './codes.js';
import type { Tolerance } from './tolerances.js';

/** Σ −log p(ids[t+1] | ids[0..t]) and the count of predicted tokens, softmax in f64. */
export function negativeLogLikelihood(logits: Float32Array, ids: readonly number[], vocab: number): { nll: number; tokens: number } {
  let nll = 0;
  let tokens = 0;
  for (let t = 0; t + 1 < ids.length && (t + 1) * vocab <= logits.length; t++) {
    const at = t * vocab;
    let max = -Infinity;
    for (let i = at; i < at + vocab; i++) if ((logits[i] as number) > max) max = logits[i] as number; // i < (t + 1) * vocab ≤ length
    let sum = 0;
    for (let i = at; i < at + vocab; i++) sum += Math.exp((logits[i] as number) - max); // as above
    const next = ids[t + 1] as number; // t + 1 < ids.length
    nll += max + Math.log(sum) - (next >= 0 && next < vocab ? (logits[at + next] as number) : NaN); // a row element
    tokens++;
  }
  return { nll, tokens };
}

/** The oracle's side, once per records object (every cell of a model scores the same oracle logits). */
const oracleNll = new WeakMap<Float32Array, { ids: readonly number[]; vocab: number; nll: number; tokens: number }>();
function oracleNegativeLogLikelihood(logits: Float32Array, ids: readonly number[], vocab: number): { nll: number; tokens: number } {
  const known = oracleNll.get(logits);
  if (known !== undefined && known.vocab === vocab && known.ids.length === ids.length && known.ids.every((v, i) => v === ids[i]))
    return known;
  const r = { ids, vocab, ...negativeLogLikelihood(logits, ids, vocab) };
  oracleNll.set(logits, r);
  return r;
}

/** One sequence's logits from each side, on the same ids. */
export interface PerplexityPair {
  ids: readonly number[];
  oracle: Float32Array;
  candidate: Float32Array;
}

export function checkPerplexity(
  pairs: readonly PerplexityPair[],
  vocab: number,
  tol: Tolerance,
  baseline: Baseline = { absoluteIsHard: true },
): CheckResult {
  let nllO = 0;
  let nllC = 0;
  let tokens = 0;
  for (const p of pairs) {
    const o = oracleNegativeLogLikelihood(p.oracle, p.ids, vocab);
    const c = negativeLogLikelihood(p.candidate, p.ids, vocab);
    nllO += o.nll;
    nllC += c.nll;
    tokens += o.tokens;
  }
  const pplOracle = Math.exp(nllO / Math.max(1, tokens));
  const pplCandidate = Math.exp(nllC / Math.max(1, tokens));
  const ratio = pplCandidate / pplOracle;
  const excess = Number.isFinite(ratio) ? ratio - 1 : Infinity;
  const verdicts: Verdict[] = [];
  const j = judgeLower(
    excess,
    tol.pplExcessMax,
    baseline,
    'pplExcess',
    (ref) => RELATIVE_RATIO * Math.max(0, ref),
    CATASTROPHIC_PPL_EXCESS,
  );
  if (j.status !== 'pass') {
    const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
    verdicts.push({
      code: 'F-LOGITS-005',
      status: j.status,
      message: `perplexity ${pplCandidate.toFixed(3)} vs the oracle's ${pplOracle.toFixed(3)} on ${tokens} held-out tokens: +${pct(excess)} (max +${pct(j.bound)})${judgementNote(j, pct)}`,
      evidence: {
        metric: 'pplExcess',
        got: excess,
        bound: j.bound,
        minPassingBound: excess,
        basis: j.basis,
        referenceValue: j.referenceValue ?? null,
        pplCandidate,
        pplOracle,
        tokens,
      },
    });
  }
  return {
    suite: 'perplexity',
    status: statusOf(verdicts),
    verdicts,
    metrics: { pplOracle, pplCandidate, pplRatio: ratio, pplExcess: excess, tokens },
  };
}
