/**
 * How a measured value is judged against its bounds, for every metric of the prompt-level claims (logits, tokens,
 * cross-runtime). Two kinds of finding are kept apart:
 * - a converter that **deviates from the reference** converter on the same model and target fails;
 * - a target whose **own scheme loses too much on this model** (the reference loses it too) is a warning with its numbers.
 *
 * The absolute bounds of tolerances.ts were calibrated on the trained tiny zoo. They hold as hard bounds for the
 * reference there (`Baseline.absoluteIsHard`); elsewhere (a heavy-tailed model, a shape-faithful one with near-flat
 * distributions, a user's checkpoint) exceeding them is a property of the target on that model, reported as a warning.
 * A candidate converter is judged against the reference's own value: it fails when it is worse than
 * `RELATIVE_RATIO ×` the reference (or, for counts, the reference plus the absolute allowance) as well as worse than the
 * absolute bound. Catastrophic limits fail whatever the reference did: no model is usable past them.
 */

/** What a prompt's metrics are judged against, besides the absolute bounds. */
export interface Baseline {
  /** The reference converter's metrics on the same model, target and prompt (undefined when judging the reference itself). */
  reference?: Readonly<Record<string, number>>;
  /** Whether exceeding an absolute bound fails even when the reference would exceed it too (the calibrated tiny zoo). */
  absoluteIsHard: boolean;
}

/**
 * A candidate may lose this many times what the reference loses on the same model and target (NMSE, KL) before it is
 * a converter fault. llama.cpp's own quantizer writes the reference's blocks (ratio 1.0 measured); a factor of 2
 * admits a different correct rounding, and a broken converter is orders of magnitude away (lm-head-zeros: NMSE 1.0
 * against the reference's 2e-4).
 */
export const RELATIVE_RATIO = 2;

/**
 * Past these no model is usable, whatever the reference does: NMSE 0.5 (half the logit energy is error), mean KL 2 nats,
 * p99 KL 20 nats. The worst reference on any model measured (apr/int4 on llama-tiny-heavy) is NMSE 0.24, KL 0.86, p99 6.1;
 * the lm_head-zeros mutant is NMSE 1.0, KL 5.6.
 */
export const CATASTROPHIC = { nmse: 0.5, klMean: 2, klP99: 20 } as const;

/** Perplexity more than doubled (+100 %) on held-out text: the model no longer models its text. */
export const CATASTROPHIC_PPL_EXCESS = 1;

/** The outcome of one metric: pass, or a verdict status with the bound that decided it. */
export interface Judgement {
  status: 'pass' | 'warn' | 'fail';
  /** The bound the value was held to in the end (absolute, relative to the reference, or catastrophic). */
  bound: number;
  /** Why: 'absolute', 'reference' (deviates from the reference converter), 'scheme' (the reference loses it too), 'catastrophic'. */
  basis: 'absolute' | 'reference' | 'scheme' | 'catastrophic';
  referenceValue?: number;
}

/**
 * Judge a lower-is-better metric. `relative(ref)` is the bound a candidate gets from the reference's value;
 * `catastrophic` fails regardless.
 */
export function judgeLower(
  value: number,
  absolute: number,
  baseline: Baseline,
  key: string,
  relative: (ref: number) => number,
  catastrophic = Infinity,
): Judgement {
  if (value <= absolute) return { status: 'pass', bound: absolute, basis: 'absolute' };
  if (!(value <= catastrophic)) return { status: 'fail', bound: catastrophic, basis: 'catastrophic' };
  const ref = baseline.reference?.[key];
  if (baseline.reference !== undefined && ref !== undefined && Number.isFinite(ref)) {
    const rel = Math.max(absolute, relative(ref));
    return value <= rel
      ? { status: 'warn', bound: rel, basis: 'scheme', referenceValue: ref }
      : { status: 'fail', bound: rel, basis: 'reference', referenceValue: ref };
  }
  // No reference value: the reference itself (or a claim the reference could not measure).
  return baseline.absoluteIsHard || baseline.reference !== undefined
    ? { status: 'fail', bound: absolute, basis: 'absolute' }
    : { status: 'warn', bound: absolute, basis: 'scheme' };
}

/** Judge a higher-is-better rate (same-top-1): the candidate may fall below the reference by the absolute allowance. */
export function judgeHigher(value: number, absolute: number, baseline: Baseline, key: string): Judgement {
  // The same rule on the negated rate: the reference's value is negated too.
  const ref = baseline.reference?.[key];
  const negated: Baseline = {
    ...baseline,
    ...(baseline.reference === undefined ? {} : { reference: ref === undefined ? {} : { [key]: -ref } }),
  };
  const flipped = judgeLower(-value, -absolute, negated, key, (negRef) => negRef + (1 - absolute));
  return {
    ...flipped,
    bound: -flipped.bound,
    ...(flipped.referenceValue === undefined ? {} : { referenceValue: -flipped.referenceValue }),
  };
}

/** The words a verdict message adds for a judgement that is not plain absolute. */
export function judgementNote(j: Judgement, show: (v: number) => string): string {
  switch (j.basis) {
    case 'reference':
      return ` — deviates from the reference converter (${show(j.referenceValue ?? NaN)} on this model and target)`;
    case 'scheme':
      return j.referenceValue === undefined
        ? ' — this target loses this much on this model (the absolute bounds are calibrated on the trained tiny zoo)'
        : ` — the reference converter loses as much on this model (${show(j.referenceValue)}): a property of the target`;
    case 'catastrophic':
      return ' — past the catastrophic limit no model is usable';
    case 'absolute':
      return '';
  }
}
