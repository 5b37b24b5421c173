import { statusOf } from './codes.js';
import type { CheckResult, Verdict } from './codes.js';
import { firstDivergingLayer, layerNmses } from './divergence.js';
import { countNonFinite, klPerRow, mean, nmse, percentile, rms, sameTop1 } from './metrics.js';
import { nearTieMargin, type Tolerance } from './tolerances.js';

/** Per-layer outputs of the same teacher-forced run, for naming the first diverging layer of a failure. */
export interface LayerCaptures {
  /** The oracle's layer outputs (OracleRecord.layerOutputs): per layer, ids.length × hidden. */
  oracle: Float32Array[];
  /** The candidate engine's (EngineSequenceResult.layerOutputs), same layout. */
  candidate: Float32Array[];
  /** NMSE bound a layer output must meet; defaults to the target's logits NMSE bound. */
  nmseMax?: number;
}

/**
 * L5 for one prompt: candidate logits at every position against the oracle's, teacher-forced on the same ids.
 * With `layers`, every failing verdict's message ends with the first diverging layer ("first diverging layer:
 * blk.1 (NMSE 4.1e-2, input 2.0e-9)", or that every block passes and the divergence comes after the last one),
 * and its evidence carries the per-layer NMSEs.
 */
export function checkLogits(prompt: string, oracle: Float32Array, candidate: Float32Array, vocab: number, tol: Tolerance, layers?: LayerCaptures): CheckResult {
  const result = logitsVerdicts(prompt, oracle, candidate, vocab, tol);
  if (layers === undefined || result.status === 'pass') return result;
  const bound = layers.nmseMax ?? tol.logitsNmseMax;
  const perLayer = layerNmses(layers.oracle, layers.candidate);
  const first = firstDivergingLayer(layers.oracle, layers.candidate, bound);
  const where =
    layers.candidate.length !== layers.oracle.length
      ? `layers not comparable: candidate captured ${layers.candidate.length}, oracle ${layers.oracle.length}`
      : first === undefined
        ? `no layer diverges (all ${perLayer.length} blocks within NMSE ${bound}): the divergence is after the last block (output_norm, output)`
        : `first diverging layer: blk.${first.layer} (NMSE ${first.nmse.toExponential(1)}, input ${first.inputNmse.toExponential(1)})`;
  const firstDiverging = first === undefined ? undefined : { ...first, name: `blk.${first.layer}` };
  for (const v of result.verdicts) {
    v.message = `${v.message}; ${where}`;
    v.evidence = { ...v.evidence, layerNmse: perLayer, layerNmseBound: bound, firstDivergingLayer: firstDiverging ?? null };
  }
  if (first !== undefined) result.metrics = { ...result.metrics, firstDivergingLayer: first.layer, firstDivergingLayerNmse: first.nmse };
  return result;
}

function logitsVerdicts(prompt: string, oracle: Float32Array, candidate: Float32Array, vocab: number, tol: Tolerance): CheckResult {
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
  return { suite: 'logits', prompt, status: statusOf(verdicts), verdicts, metrics };
}
