import { statusOf } from './codes.js';
import { TARGETS, type TargetId } from '../contracts/targets.js';
import { judgeLower, judgementNote, type Baseline } from './bounds.js';
/**
 * L6 tokens: the candidate's greedy continuation against the oracle's (F-TOKENS-001/002), and, across the
 * targets of one model, whether drift grows as precision falls (F-TOKENS-003).
 */
import type { CheckResult, Verdict } from './codes.js';
import type { GreedyStep } from './metrics.js';
import { nearTieMargin, type Tolerance } from './tolerances.js';

/** Turns token ids into text for evidence (a tokenizer's `decode`). */
export type Decode = (ids: number[]) => string;

/** Position-by-position comparison of two greedy continuations. */
export interface GreedyComparison {
  /** Positions (of the longer continuation) where the ids differ; a missing id counts as a difference. */
  mismatches: number;
  /** First differing position, or -1 when the continuations are equal. */
  firstDivergence: number;
  /** Length of the longer continuation. */
  length: number;
}

export function compareGreedy(oracle: readonly number[], candidate: readonly number[]): GreedyComparison {
  const length = Math.max(oracle.length, candidate.length);
  let mismatches = 0;
  let firstDivergence = -1;
  for (let i = 0; i < length; i++) {
    if (oracle[i] === candidate[i]) continue;
    mismatches++;
    if (firstDivergence < 0) firstDivergence = i;
  }
  return { mismatches, firstDivergence, length };
}

/**
 * L6 for one prompt: the candidate's greedy continuation against the oracle's, both decoded from the same
 * prompt ids for the same number of steps. Positions are compared one by one, as the Python harness counts
 * them. `tol.greedyMismatchMax === 0` marks a canary target whose continuation must be exact: any counted
 * difference is F-TOKENS-001. Otherwise more than `greedyMismatchMax` is F-TOKENS-002. Evidence carries the
 * first divergence, both id lists and, with `decode`, both continuations as text (whole, and from the first
 * divergence on).
 *
 * Near-ties: with `oracleSteps` (metrics.ts `greedySteps` of the oracle's logits), a first divergence where
 * the oracle's top-2 margin is below the target's near-tie margin (tolerances.ts `nearTieMargin`, the rule
 * same-top-1 uses) stops the count there: the oracle itself could have gone either way under an error the
 * target's bounds accept, and every token after it follows a different history, so none of them is
 * evidence against the candidate. Counting them, the reference converter has 15/32 on llama-tiny q8_0 from
 * one flip at a 0.0045-logit margin (tolerances.ts calibration note). A divergence that is not a near-tie
 * is counted in full, its margin shown. metrics: `mismatches` (counted), `rawMismatches` (every differing
 * position), `firstDivergence` (-1: none), `tokens`, and `nearTieStop` (1 when the count stopped at a
 * near-tie) with `marginAtDivergence` when known.
 */
export function checkTokens(
  prompt: string,
  oracleGreedy: number[],
  candidateGreedy: number[],
  tol: Tolerance,
  decode?: Decode,
  oracleSteps?: readonly GreedyStep[],
  baseline: Baseline = { absoluteIsHard: true },
): CheckResult {
  const cmp = compareGreedy(oracleGreedy, candidateGreedy);
  const from = cmp.firstDivergence;
  const step = from >= 0 ? oracleSteps?.[from] : undefined;
  const nearTieAt = step === undefined ? undefined : nearTieMargin(tol, step.rms);
  const stopped = step !== undefined && nearTieAt !== undefined && step.margin < nearTieAt;
  const mismatches = stopped ? 0 : cmp.mismatches;
  const metrics: Record<string, number> = {
    mismatches,
    rawMismatches: cmp.mismatches,
    firstDivergence: from,
    tokens: cmp.length,
    nearTieStop: stopped ? 1 : 0,
    ...(step === undefined ? {} : { marginAtDivergence: step.margin }),
  };
  const verdicts: Verdict[] = [];
  const canary = tol.greedyMismatchMax === 0;
  // Relative to the reference: it may flip as many tokens as the reference does, plus the absolute allowance.
  const j = judgeLower(mismatches, tol.greedyMismatchMax, baseline, 'mismatches', (ref) => ref + tol.greedyMismatchMax);
  if (j.status !== 'pass') {
    const text = (ids: number[]): { whole: string; fromDivergence: string } | undefined =>
      decode === undefined ? undefined : { whole: decode(ids), fromDivergence: decode(ids.slice(from)) };
    const expected = text(oracleGreedy);
    const got = text(candidateGreedy);
    const shown =
      (step === undefined
        ? ''
        : ` (oracle top-2 margin there ${step.margin.toExponential(1)}, near-tie below ${(nearTieAt ?? 0).toExponential(1)})`) +
      (expected && got ? `: expected ${JSON.stringify(expected.fromDivergence)}, got ${JSON.stringify(got.fromDivergence)}` : '');
    const note = judgementNote(j, String);
    verdicts.push({
      code: canary ? 'F-TOKENS-001' : 'F-TOKENS-002',
      status: j.status,
      message: canary
        ? `greedy continuation must be exact but differs from token ${from} on (${mismatches}/${cmp.length} positions)${shown}${note}`
        : `${mismatches}/${cmp.length} greedy tokens differ (max ${j.bound}), first at token ${from}${shown}${note}`,
      evidence: {
        metric: 'mismatches',
        got: mismatches,
        bound: j.bound,
        minPassingBound: mismatches,
        basis: j.basis,
        referenceValue: j.referenceValue ?? null,
        mismatches,
        tokens: cmp.length,
        firstDivergence: from,
        ...(step === undefined ? {} : { oracleMarginAtDivergence: step.margin, nearTieMargin: nearTieAt }),
        expectedIds: oracleGreedy,
        gotIds: candidateGreedy,
        ...(expected && got
          ? {
              expectedText: expected.whole,
              gotText: got.whole,
              expectedFromDivergence: expected.fromDivergence,
              gotFromDivergence: got.fromDivergence,
            }
          : {}),
      },
    });
  }
  return { suite: 'tokens', prompt, status: statusOf(verdicts), verdicts, metrics };
}

/** The precision rank of a target id (`gguf/q8_0`; contracts/targets.ts), or undefined for an id that is not a target. */
export function precisionRank(target: string): number | undefined {
  return Object.hasOwn(TARGETS, target) ? TARGETS[target as TargetId].precisionRank : undefined; // hasOwn proved the key
}

/** One target of one model in the drift-ordering claim: its precision rank and how far it drifts from the oracle. */
export interface DriftCell {
  target: string;
  precisionRank: number;
  /**
   * How far the cell drifts: the mean KL(oracle ‖ candidate) over every scored position of every prompt (logits
   * metrics), a statistic that grows smoothly with the error. Greedy flip counts do not: one flip at a near-tie
   * rewrites the rest of a continuation, so q8_0 can "drift" 4 tokens where q5_1 drifts none.
   */
  drift: number;
}

/** A higher-precision cell may drift up to this many times a lower-precision one's, plus the floor (f32-level noise). */
export const DRIFT_RATIO = 2;
export const DRIFT_FLOOR = 1e-6;

/**
 * F-TOKENS-003 for one model: drift should not grow with precision. For every pair of targets of the same format where
 * `a` keeps more bits than `b` (lower rank), `a.drift > DRIFT_RATIO · b.drift + DRIFT_FLOOR` is a verdict. Cells of equal
 * rank are not compared, nor cells of different formats (one scale per tensor in APR int8 is not Q8_0's per-32-block
 * scale: bits alone do not order them). Returns one verdict per violating pair, higher-precision target first.
 */
export function checkDriftOrdering(cells: readonly DriftCell[]): Verdict[] {
  const verdicts: Verdict[] = [];
  const format = (t: string) => t.slice(0, t.indexOf('/'));
  const ordered = [...cells].sort((x, y) => x.precisionRank - y.precisionRank || x.target.localeCompare(y.target));
  for (const a of ordered) {
    for (const b of ordered) {
      if (format(a.target) !== format(b.target) || !(a.precisionRank < b.precisionRank)) continue;
      const bound = DRIFT_RATIO * b.drift + DRIFT_FLOOR;
      // NaN drift (NaN logits) is unbounded drift: it must not pass the comparison by being incomparable.
      const drift = Number.isNaN(a.drift) ? Infinity : a.drift;
      if (!(drift > bound)) continue;
      verdicts.push({
        code: 'F-TOKENS-003',
        status: 'fail',
        message: `${a.target} (rank ${a.precisionRank}) drifts more than ${b.target} (rank ${b.precisionRank}): mean KL ${a.drift.toExponential(2)} > ${DRIFT_RATIO} × ${b.drift.toExponential(2)} + ${DRIFT_FLOOR}`,
        evidence: {
          metric: 'klMean',
          got: a.drift,
          bound,
          minPassingBound: a.drift,
          higherPrecision: { target: a.target, precisionRank: a.precisionRank, drift: a.drift },
          lowerPrecision: { target: b.target, precisionRank: b.precisionRank, drift: b.drift },
        },
      });
    }
  }
  return verdicts;
}
