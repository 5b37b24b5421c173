import type { CheckResult, Verdict } from './codes.js';
import { countNonFinite, klPerRow, mean, nmse, percentile, rms, sameTop1 } from './metrics.js';
import { nearTieMargin, type Tolerance } from './tolerances.js';

/** L5 for one prompt: candidate logits at every position against the oracle's, teacher-forced on the same ids. */
export function checkLogits(prompt: string, oracle: Float32Array, candidate: Float32Array, vocab: number, tol: Tolerance): CheckResult {
  const verdicts: Verdict[] = [];
  if (candidate.length !== oracle.length) {
    verdicts.push({ code: 'F-LOGITS-002', status: 'fail', message: `logits have ${candidate.length} values, oracle ${oracle.length}`, evidence: { got: candidate.length, expected: oracle.length } });
    return { suite: 'logits', prompt, status: 'fail', verdicts };
  }
  const nonFinite = countNonFinite(candidate);
  if (nonFinite > 0) {
    verdicts.push({ code: 'F-LOGITS-001', status: 'fail', message: `${nonFinite} NaN/Inf logits`, evidence: { nonFinite, total: candidate.length } });
    return { suite: 'logits', prompt, status: 'fail', verdicts };
  }
  const e = nmse(oracle, candidate);
  if (!(e <= tol.logitsNmseMax)) {
    verdicts.push({ code: 'F-LOGITS-002', status: 'fail', message: `NMSE ${e.toExponential(3)} > ${tol.logitsNmseMax}`, evidence: { nmse: e, bound: tol.logitsNmseMax, minPassingTolerance: e } });
  }
  const kl = klPerRow(oracle, candidate, vocab);
  const klMean = mean(kl);
  const klP99 = percentile(kl, 99);
  if (!(klMean <= tol.klMeanMax) || !(klP99 <= tol.klP99Max)) {
    verdicts.push({
      code: 'F-LOGITS-003',
      status: 'fail',
      message: `KL mean ${klMean.toExponential(3)} (max ${tol.klMeanMax}), p99 ${klP99.toExponential(3)} (max ${tol.klP99Max})`,
      evidence: { klMean, klP99, klMax: Math.max(...kl), klMeanBound: tol.klMeanMax, klP99Bound: tol.klP99Max },
    });
  }
  const top = sameTop1(oracle, candidate, vocab, (row) => nearTieMargin(tol, rms(row)));
  if (top.rate < tol.sameTop1Min) {
    verdicts.push({
      code: 'F-LOGITS-004',
      status: 'fail',
      message: `same top-1 ${(100 * top.rate).toFixed(1)}% of ${top.counted} positions (min ${(100 * tol.sameTop1Min).toFixed(1)}%)`,
      evidence: { sameTop1: top.rate, positions: top.counted, nearTiesExcluded: top.nearTies, mismatchedPositions: top.mismatchedRows, bound: tol.sameTop1Min },
    });
  }
  const metrics = { nmse: e, klMean, klP99, sameTop1: top.rate, positions: kl.length, nearTiesExcluded: top.nearTies };
  return { suite: 'logits', prompt, status: verdicts.length ? 'fail' : 'pass', verdicts, metrics };
}
