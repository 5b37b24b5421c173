import { statusOf } from './codes.js';
import type { CheckResult, Verdict } from './codes.js';
import { firstDivergingLayer, layerNmses } from './divergence.js';
import { CATASTROPHIC, judgeHigher, judgeLower, judgementNote, RELATIVE_RATIO, type Baseline, type Judgement } from './bounds.js';
import { countNonFinite, klPerRow, klStatistics, nmse, rms, sameTop1 } from './metrics.js';
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
export function checkLogits(
  prompt: string,
  oracle: Float32Array,
  candidate: Float32Array,
  vocab: number,
  tol: Tolerance,
  layers?: LayerCaptures,
  opts: LogitsOptions = {},
): CheckResult {
  const result = logitsVerdicts(prompt, oracle, candidate, vocab, tol, opts.baseline ?? { absoluteIsHard: true }, opts.ids);
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

const worst = (...js: Judgement[]): Judgement =>
  js.find((j) => j.status === 'fail') ?? js.find((j) => j.status === 'warn') ?? (js[0] as Judgement); // callers pass ≥ 1
const exp = (v: number): string => v.toExponential(2);

/** What checkLogits judges against besides the absolute bounds, and the ids the logits were computed on. */
export interface LogitsOptions {
  /** The reference converter's metrics, or whether the absolute bounds are hard for this model (bounds.ts). Default: hard. */
  baseline?: Baseline;
  /** The teacher-forced ids (row t predicts ids[t+1]): for llama.cpp's Δp statistics. */
  ids?: readonly number[];
}

function logitsVerdicts(
  prompt: string,
  oracle: Float32Array,
  candidate: Float32Array,
  vocab: number,
  tol: Tolerance,
  baseline: Baseline,
  ids: readonly number[] | undefined,
): CheckResult {
  const verdicts: Verdict[] = [];
  if (candidate.length !== oracle.length) {
    verdicts.push({
      code: 'F-LOGITS-002',
      status: 'fail',
      message: `logits have ${candidate.length} values, oracle ${oracle.length}`,
      evidence: { metric: 'values', got: candidate.length, bound: oracle.length, minPassingBound: null, expected: oracle.length },
    });
    return { suite: 'logits', prompt, status: 'fail', verdicts };
  }
  const nonFinite = countNonFinite(candidate);
  if (nonFinite > 0) {
    verdicts.push({
      code: 'F-LOGITS-001',
      status: 'fail',
      message: `${nonFinite} NaN/Inf logits`,
      evidence: { metric: 'nonFinite', got: nonFinite, bound: 0, minPassingBound: nonFinite, nonFinite, total: candidate.length },
    });
    return { suite: 'logits', prompt, status: 'fail', verdicts };
  }
  const e = nmse(oracle, candidate);
  const ratio = (ref: number) => RELATIVE_RATIO * ref;
  const jNmse = judgeLower(e, tol.logitsNmseMax, baseline, 'nmse', ratio, CATASTROPHIC.nmse);
  if (jNmse.status !== 'pass') {
    verdicts.push({
      code: 'F-LOGITS-002',
      status: jNmse.status,
      message: `NMSE ${e.toExponential(3)} > ${exp(jNmse.bound)}${judgementNote(jNmse, exp)}`,
      evidence: {
        metric: 'nmse',
        got: e,
        bound: jNmse.bound,
        minPassingBound: e,
        basis: jNmse.basis,
        absoluteBound: tol.logitsNmseMax,
        referenceValue: jNmse.referenceValue ?? null,
      },
    });
  }
  const kl = klPerRow(oracle, candidate, vocab);
  const stats = klStatistics(oracle, candidate, vocab, kl, ids);
  const klMean = stats.klMean;
  const klP99 = stats.klP99;
  const jMean = judgeLower(klMean, tol.klMeanMax, baseline, 'klMean', ratio, CATASTROPHIC.klMean);
  const jP99 = judgeLower(klP99, tol.klP99Max, baseline, 'klP99', ratio, CATASTROPHIC.klP99);
  const jKl = worst(jMean, jP99);
  if (jKl.status !== 'pass') {
    verdicts.push({
      code: 'F-LOGITS-003',
      status: jKl.status,
      message: `KL mean ${klMean.toExponential(3)} (max ${exp(jMean.bound)}), p99 ${klP99.toExponential(3)} (max ${exp(jP99.bound)})${judgementNote(jKl, exp)}`,
      evidence: {
        metric: jMean.status !== 'pass' ? 'klMean' : 'klP99',
        got: jMean.status !== 'pass' ? klMean : klP99,
        bound: jKl.bound,
        minPassingBound: jMean.status !== 'pass' ? klMean : klP99,
        basis: jKl.basis,
        klMean,
        klP99,
        klMax: Math.max(...kl),
        klMeanBound: jMean.bound,
        klP99Bound: jP99.bound,
        referenceValue: jKl.referenceValue ?? null,
      },
    });
  }
  const top = sameTop1(oracle, candidate, vocab, (row) => nearTieMargin(tol, rms(row)));
  const jTop = judgeHigher(top.rate, tol.sameTop1Min, baseline, 'sameTop1');
  if (jTop.status !== 'pass') {
    const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
    verdicts.push({
      code: 'F-LOGITS-004',
      status: jTop.status,
      message: `same top-1 ${pct(top.rate)} of ${top.counted} positions (min ${pct(jTop.bound)})${judgementNote(jTop, pct)}`,
      evidence: {
        metric: 'sameTop1',
        got: top.rate,
        bound: jTop.bound,
        minPassingBound: top.rate,
        basis: jTop.basis,
        positions: top.counted,
        nearTiesExcluded: top.nearTies,
        mismatchedPositions: top.mismatchedRows,
        referenceValue: jTop.referenceValue ?? null,
      },
    });
  }
  const metrics = { nmse: e, ...stats, sameTop1: top.rate, positions: kl.length, nearTiesExcluded: top.nearTies };
  return { suite: 'logits', prompt, status: statusOf(verdicts), verdicts, metrics, detail: { klPerPosition: kl } };
}
