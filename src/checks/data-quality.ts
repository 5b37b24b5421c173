import { statusOf } from './codes.js';
import type { ByteSource } from '../formats/byte-source.js';
import { dequantize } from '../formats/codecs/index.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import type { ModelFile } from '../formats/types.js';
import type { CheckResult, Verdict } from './codes.js';
import type { ExpectedTensor } from './manifest.js';
import { referenceQuantization } from './reference-codec.js';
import type { Tolerance } from './tolerances.js';

export interface TensorStats {
  count: number;
  zeroFraction: number;
  nanCount: number;
  infCount: number;
}

export function tensorStats(values: Float32Array): TensorStats {
  let zeros = 0;
  let nan = 0;
  let inf = 0;
  for (const v of values) {
    if (v === 0) zeros++;
    else if (Number.isNaN(v)) nan++;
    else if (!Number.isFinite(v)) inf++;
  }
  return { count: values.length, zeroFraction: values.length ? zeros / values.length : 0, nanCount: nan, infCount: inf };
}

const pct = (f: number): string => `${(100 * f).toFixed(1)}%`;

/** A row (or a whole tensor) is dead when its L2 norm is below this (aprender tensor-layout-v1 F-DATA-QUALITY-003/-004). */
export const DEAD_L2 = 1e-6;
/** Spot rows checked for an offset shift: 10/50/90% of the rows (aprender F-DATA-QUALITY-004). */
export const SPOT_ROW_FRACTIONS = [0.1, 0.5, 0.9] as const;
/** At least this fraction of dead rows is too many (aprender F-DATA-QUALITY-005: fewer than 25%)... */
export const DEAD_ROW_FRACTION_MAX = 0.25;
/** ...unless the source itself has at least this share of the file's dead-row fraction (judged relative to the source). */
export const SOURCE_DEAD_ROW_SHARE = 0.5;

/** L2 norm, whether every value is the same, and per-row L2 norms of a [rows, cols] view (f64 sums). */
export interface RowStats {
  l2: number;
  isConstant: boolean;
  rowL2: Float64Array;
}

export function rowStats(values: Float32Array, rows: number): RowStats {
  const cols = rows > 0 ? values.length / rows : 0;
  const rowL2 = new Float64Array(rows);
  let total = 0;
  const first = values[0];
  let isConstant = values.length > 1;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = r * cols; c < (r + 1) * cols; c++) {
      const v = values[c] as number;
      s += v * v;
      if (isConstant && !Object.is(v, first) && !(v === 0 && first === 0)) isConstant = false;
    }
    rowL2[r] = Math.sqrt(s);
    total += s;
  }
  return { l2: Math.sqrt(total), isConstant, rowL2 };
}

const deadCount = (rowL2: Float64Array): number => rowL2.reduce((n, v) => (v < DEAD_L2 || Number.isNaN(v) ? n + 1 : n), 0);

/**
 * L3: per tensor, judged against its own source tensor (not absolute gates):
 * - F-DATA-QUALITY-001 zero fraction above the source's by more than `tol.extraZeroFractionMax`;
 * - -002 NaN/Inf the source does not have;
 * - -003 constant tensor (every value equal) or L2 < DEAD_L2, where the source is neither;
 * - -004 spot rows at 10/50/90% of a 2-D tensor's rows with L2 < DEAD_L2 where the source's rows are
 *   alive (an offset shift: PMAT-234's 94.5% leading zeros);
 * - -005 at least DEAD_ROW_FRACTION_MAX of the rows dead, where the source has under half as many.
 * Tensors the layout check could not match (wrong element count, malformed) are skipped: their bytes do
 * not mean what their header says. Row checks need the file's shape to equal the source's.
 */
export function checkDataQuality(file: ModelFile, src: ByteSource, expected: ExpectedTensor[], tol: Tolerance): CheckResult {
  const verdicts: Verdict[] = [];
  const zeroFractions: Record<string, number> = {};
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const flagged = new Set(file.issues.map((i) => i.tensor).filter((t) => t !== undefined));
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t || flagged.has(t.name) || t.spanBytes < t.byteLength) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== e.source.length) continue;
    let values: Float32Array;
    try {
      values = dequantize(t.dtype, readTensorBytes(src, t), n);
    } catch {
      continue; // undecodable type or bytes outside the file: L0/L2 report it
    }
    const got = tensorStats(values);
    const base = tensorStats(e.source);
    // Zeros and dead rows are judged against what the stored type itself makes of the source (its reference codec): one
    // scale per tensor or block rounds small weights to zero by design (apr/int4 on heavy-tailed weights: 41 % zeros).
    const stored = referenceQuantization(t.dtype, e.source, n)?.values ?? e.source;
    const storedZeros = stored === e.source ? base.zeroFraction : tensorStats(stored).zeroFraction;
    zeroFractions[t.name] = got.zeroFraction;
    if (got.zeroFraction - storedZeros > tol.extraZeroFractionMax) {
      verdicts.push({
        code: 'F-DATA-QUALITY-001',
        status: 'fail',
        tensor: t.name,
        message: `${pct(got.zeroFraction)} zeros (source ${pct(base.zeroFraction)}${stored === e.source ? '' : `, ${pct(storedZeros)} once stored as ${t.dtype}`}, max +${pct(tol.extraZeroFractionMax)})`,
        evidence: {
          metric: 'zeroFraction',
          got: got.zeroFraction,
          bound: storedZeros + tol.extraZeroFractionMax,
          minPassingBound: got.zeroFraction,
          sourceZeroFraction: base.zeroFraction,
          storedTypeZeroFraction: storedZeros,
          dtype: t.dtype,
        },
      });
    }
    if (got.nanCount + got.infCount > base.nanCount + base.infCount) {
      verdicts.push({
        code: 'F-DATA-QUALITY-002',
        status: 'fail',
        tensor: t.name,
        message: `${got.nanCount} NaN and ${got.infCount} Inf values (source ${base.nanCount} and ${base.infCount})`,
        evidence: {
          metric: 'nonFinite',
          got: got.nanCount + got.infCount,
          bound: base.nanCount + base.infCount,
          minPassingBound: got.nanCount + got.infCount,
          nanCount: got.nanCount,
          infCount: got.infCount,
          sourceNanCount: base.nanCount,
          sourceInfCount: base.infCount,
          dtype: t.dtype,
        },
      });
    }
    const sameShape = t.shape.length === e.shape.length && t.shape.every((d, i) => d === e.shape[i]);
    const rows = t.shape.length >= 2 && sameShape ? (t.shape[0] as number) : 1;
    const gotRows = rowStats(values, rows);
    const baseRows = rowStats(stored, rows);
    const isDead = (s: RowStats) => s.l2 < DEAD_L2 || Number.isNaN(s.l2);
    if ((gotRows.isConstant && !baseRows.isConstant) || (isDead(gotRows) && !isDead(baseRows))) {
      const what = isDead(gotRows)
        ? `L2 ${gotRows.l2.toExponential(2)} (< ${DEAD_L2})`
        : `constant: every value is ${Number((values[0] as number).toPrecision(7))}`;
      verdicts.push({
        code: 'F-DATA-QUALITY-003',
        status: 'fail',
        tensor: t.name,
        message: `${what}; the source's L2 is ${baseRows.l2.toPrecision(4)} and its values vary`,
        evidence: {
          metric: 'l2',
          got: gotRows.l2,
          bound: DEAD_L2,
          minPassingBound: null,
          l2: gotRows.l2,
          isConstant: gotRows.isConstant,
          value: gotRows.isConstant ? values[0] : null,
          sourceL2: baseRows.l2,
          dtype: t.dtype,
        },
      });
    }
    if (rows < 2) continue;
    const spot = SPOT_ROW_FRACTIONS.map((f) => Math.min(rows - 1, Math.floor(f * rows))).filter(
      (r) => (gotRows.rowL2[r] as number) < DEAD_L2 && (baseRows.rowL2[r] as number) >= DEAD_L2,
    );
    if (spot.length > 0) {
      verdicts.push({
        code: 'F-DATA-QUALITY-004',
        status: 'fail',
        tensor: t.name,
        message: `spot row${spot.length > 1 ? 's' : ''} ${spot.join(', ')} of ${rows} (10/50/90%) ${spot.length > 1 ? 'are' : 'is'} dead (L2 < ${DEAD_L2}) where the source's ${spot.length > 1 ? 'are' : 'is'} not: data loaded from a shifted offset?`,
        evidence: {
          metric: 'deadSpotRows',
          got: spot.length,
          bound: 0,
          minPassingBound: spot.length,
          rows,
          deadSpotRows: spot,
          rowL2: spot.map((r) => gotRows.rowL2[r]),
          sourceRowL2: spot.map((r) => baseRows.rowL2[r]),
        },
      });
    }
    const deadFraction = deadCount(gotRows.rowL2) / rows;
    const sourceDeadFraction = deadCount(baseRows.rowL2) / rows;
    if (deadFraction >= DEAD_ROW_FRACTION_MAX && sourceDeadFraction < SOURCE_DEAD_ROW_SHARE * deadFraction) {
      verdicts.push({
        code: 'F-DATA-QUALITY-005',
        status: 'fail',
        tensor: t.name,
        message: `${pct(deadFraction)} of ${rows} rows are dead (L2 < ${DEAD_L2}); the source has ${pct(sourceDeadFraction)} (max ${pct(DEAD_ROW_FRACTION_MAX)})`,
        evidence: {
          metric: 'deadFraction',
          got: deadFraction,
          bound: DEAD_ROW_FRACTION_MAX,
          minPassingBound: deadFraction,
          rows,
          deadFraction,
          sourceDeadFraction,
        },
      });
    }
  }
  const metrics = Object.fromEntries(Object.entries(zeroFractions).map(([name, z]) => [`zeroFraction.${name}`, z]));
  return { suite: 'data-quality', status: statusOf(verdicts), verdicts, metrics };
}
