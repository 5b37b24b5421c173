import type { ByteSource } from '../formats/byte-source.js';
import { dequantize } from '../formats/codecs/index.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import type { ModelFile } from '../formats/types.js';
import type { CheckResult, Verdict } from './codes.js';
import type { ExpectedTensor } from './manifest.js';
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

/**
 * L3: per tensor, judged against its own source tensor (not absolute gates): zero fraction (-001) and
 * NaN/Inf (-002). Tensors the layout check could not match (wrong element count, malformed) are skipped:
 * their bytes do not mean what their header says.
 */
export function checkDataQuality(file: ModelFile, src: ByteSource, expected: ExpectedTensor[], tol: Tolerance): CheckResult {
  const verdicts: Verdict[] = [];
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const flagged = new Set(file.issues.map((i) => i.tensor).filter((t) => t !== undefined));
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t || flagged.has(t.name) || t.spanBytes < t.byteLength) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== e.source.length) continue;
    const got = tensorStats(dequantize(t.dtype, readTensorBytes(src, t), n));
    const base = tensorStats(e.source);
    if (got.zeroFraction - base.zeroFraction > tol.extraZeroFractionMax) {
      verdicts.push({
        code: 'F-DATA-QUALITY-001',
        status: 'fail',
        tensor: t.name,
        message: `${pct(got.zeroFraction)} zeros (source ${pct(base.zeroFraction)}, max +${pct(tol.extraZeroFractionMax)})`,
        evidence: { zeroFraction: got.zeroFraction, sourceZeroFraction: base.zeroFraction, bound: tol.extraZeroFractionMax, dtype: t.dtype },
      });
    }
    if (got.nanCount + got.infCount > base.nanCount + base.infCount) {
      verdicts.push({
        code: 'F-DATA-QUALITY-002',
        status: 'fail',
        tensor: t.name,
        message: `${got.nanCount} NaN and ${got.infCount} Inf values (source ${base.nanCount} and ${base.infCount})`,
        evidence: { nanCount: got.nanCount, infCount: got.infCount, sourceNanCount: base.nanCount, sourceInfCount: base.infCount, dtype: t.dtype },
      });
    }
  }
  return { suite: 'data-quality', status: verdicts.length ? 'fail' : 'pass', verdicts };
}
