/** The judgement rule of checks/bounds.ts on hand-made values: absolute, relative to the reference, scheme, catastrophic. */
import { describe, expect, it } from 'vitest';
import { judgeHigher, judgeLower, type Baseline, type Judgement } from '../../src/checks/bounds.js';

interface Case {
  name: string;
  value: number;
  baseline: Baseline;
  status: Judgement['status'];
  basis?: Judgement['basis'];
}

const twice = (ref: number) => 2 * ref;

describe('judgeLower (NMSE, KL: lower is better)', () => {
  it.each<Case>([
    { name: 'within the absolute bound: pass', value: 1e-3, baseline: { absoluteIsHard: true }, status: 'pass', basis: 'absolute' },
    {
      name: 'the reference on the calibrated zoo: over the bound fails',
      value: 2e-2,
      baseline: { absoluteIsHard: true },
      status: 'fail',
      basis: 'absolute',
    },
    {
      name: 'the reference elsewhere: over the bound warns (a property of the target)',
      value: 2e-2,
      baseline: { absoluteIsHard: false },
      status: 'warn',
      basis: 'scheme',
    },
    {
      name: 'a candidate within 2× the reference: warns',
      value: 3e-2,
      baseline: { absoluteIsHard: false, reference: { m: 2e-2 } },
      status: 'warn',
      basis: 'scheme',
    },
    {
      name: 'a candidate past 2× the reference: fails (deviates)',
      value: 5e-2,
      baseline: { absoluteIsHard: false, reference: { m: 2e-2 } },
      status: 'fail',
      basis: 'reference',
    },
    {
      name: 'a candidate with no reference value for the metric: fails on the absolute bound',
      value: 2e-2,
      baseline: { absoluteIsHard: false, reference: {} },
      status: 'fail',
      basis: 'absolute',
    },
    {
      name: 'past the catastrophic limit: fails whatever the reference',
      value: 0.9,
      baseline: { absoluteIsHard: false, reference: { m: 0.8 } },
      status: 'fail',
      basis: 'catastrophic',
    },
    { name: 'NaN: fails', value: NaN, baseline: { absoluteIsHard: false, reference: { m: 1e-3 } }, status: 'fail', basis: 'catastrophic' },
  ])('$name', ({ value, baseline, status, basis }) => {
    const j = judgeLower(value, 1e-2, baseline, 'm', twice, 0.5);
    expect([j.status, j.basis]).toEqual([status, basis]);
  });
});

describe('judgeHigher (same-top-1: higher is better)', () => {
  it.each<Case>([
    { name: 'above the minimum: pass', value: 0.99, baseline: { absoluteIsHard: true }, status: 'pass' },
    { name: 'below it on the calibrated zoo: fail', value: 0.8, baseline: { absoluteIsHard: true }, status: 'fail' },
    {
      name: 'a candidate near the reference, both below the minimum: warn',
      value: 0.78,
      baseline: { absoluteIsHard: false, reference: { r: 0.8 } },
      status: 'warn',
    },
    {
      name: 'a candidate far below a good reference: fail',
      value: 0,
      baseline: { absoluteIsHard: false, reference: { r: 1 } },
      status: 'fail',
    },
  ])('$name', ({ value, baseline, status }) => {
    expect(judgeHigher(value, 0.85, baseline, 'r').status).toBe(status);
  });
  it('the bound a candidate is held to is the reference minus the absolute allowance', () => {
    const j = judgeHigher(0.5, 0.85, { absoluteIsHard: false, reference: { r: 0.8 } }, 'r');
    expect(j.bound).toBeCloseTo(0.65, 12);
    expect(j.referenceValue).toBe(0.8);
  });
});
