import { statusOf } from './codes.js';
import type { ByteSource } from '../formats/byte-source.js';
import { dequantize, tensorByteLength } from '../formats/codecs/index.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import type { DType, ModelFile, TensorEntry } from '../formats/types.js';
import type { CheckResult, Verdict } from './codes.js';
import type { ExpectedTensor } from './manifest.js';
import type { QuantPolicy } from '../contracts/policy.js';

/** Storage types that keep (or widen) f32 precision per element: anything else counts as quantized. */
const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F32', 'F64', 'F16', 'BF16']);

/** Whether a dtype is a quantized (block or integer) encoding rather than a float one. */
export function isQuantizedDType(dtype: DType): boolean {
  return !FLOAT_DTYPES.has(dtype);
}

const list = (d: readonly DType[]): string => d.join(', ');
const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Bit-level equality of two f32 arrays (NaN payloads aside): the first differing index, the count and the largest |difference|. */
function bitDiff(a: Float32Array, b: Float32Array): { count: number; first: number; maxAbsDiff: number } {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let count = 0;
  let first = -1;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    if (ua[i] === ub[i]) continue;
    const x = a[i] as number;
    const y = b[i] as number;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    count++;
    if (first < 0) first = i;
    const d = Math.abs(x - y);
    maxAbsDiff = Number.isNaN(d) ? Infinity : Math.max(maxAbsDiff, d);
  }
  return { count, first, maxAbsDiff };
}

/**
 * L2 dtype policy. Returns its own CheckResult with suite 'layout' (the runner may push it beside
 * checkLayout's, or concatenate the verdicts into one layout check).
 *
 * - F-LAYOUT-CONTRACT-003, per 1-D tensor (norm gain, bias): stored in a dtype outside
 *   `policy.highPrecisionDTypes` (quantized, e.g. a 576-wide norm that divides into Q8_0 blocks —
 *   sd.cpp PR 1861), or, when `src` is given and it is stored as F32, not bit-equal to the source.
 * - F-LAYOUT-CONTRACT-007, per 2-D tensor: a tensor the policy keeps high precision (`highPrecision`
 *   name patterns: norms, biases, position embeddings, and lm_head when the converter promises to
 *   leave it) stored outside `highPrecisionDTypes`; any other 2-D weight stored outside
 *   `quantizedDTypes` (the target type and its documented fallbacks) — an F32 weight in a q8_0 file
 *   breaks the policy as much as a Q4_0 one. And once per file (no tensor): nothing quantized at all
 *   although `expectsQuantized` (paiml/aprender#276, a "successful" quantize that wrote its input back).
 *
 * Only tensors the manifest expects are judged (unexpected ones are -006's business); a tensor whose
 * element count differs from the source's (-001) is judged by dtype but not by value.
 */
export function checkPolicy(file: ModelFile, policy: QuantPolicy, expected: ExpectedTensor[], src?: ByteSource): CheckResult {
  const verdicts: Verdict[] = [];
  const hp = policy.highPrecision.map((p) => new RegExp(p));
  const isHighPrecisionName = (name: string): boolean => hp.some((r) => r.test(name));
  const byName = new Map<string, TensorEntry>(file.tensors.map((t) => [t.name, t]));
  const flagged = new Set(file.issues.map((i) => i.tensor).filter((t) => t !== undefined));
  let quantizedCount = 0;
  let oneDChecked = 0;
  let bitExactChecked = 0;
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t) continue;
    if (isQuantizedDType(t.dtype)) quantizedCount++;
    const isOneD = e.shape.length <= 1;
    if (isOneD) {
      oneDChecked++;
      if (!policy.highPrecisionDTypes.includes(t.dtype)) {
        verdicts.push({
          code: 'F-LAYOUT-CONTRACT-003',
          status: 'fail',
          tensor: t.name,
          message: `1-D tensor stored as ${t.dtype}: norms and biases must stay in ${list(policy.highPrecisionDTypes)}`,
          evidence: {
            expected: policy.highPrecisionDTypes,
            got: t.dtype,
            dtype: t.dtype,
            allowed: policy.highPrecisionDTypes,
            shape: t.shape,
          },
        });
        continue;
      }
      const n = numel(t.shape);
      if (
        src === undefined ||
        t.dtype !== 'F32' ||
        n !== e.source.length ||
        flagged.has(t.name) ||
        tensorByteLength(t.dtype, n) !== t.byteLength
      )
        continue;
      let got: Float32Array;
      try {
        got = dequantize(t.dtype, readTensorBytes(src, t), n);
      } catch {
        continue; // bytes outside the file: L0 already said so
      }
      bitExactChecked++;
      const d = bitDiff(e.source, got);
      if (d.count > 0) {
        verdicts.push({
          code: 'F-LAYOUT-CONTRACT-003',
          status: 'fail',
          tensor: t.name,
          message: `1-D tensor altered: ${d.count} of ${n} F32 values differ from the source (first at [${d.first}]: got ${got[d.first]}, expected ${e.source[d.first]}; max |diff| ${d.maxAbsDiff.toPrecision(3)})`,
          evidence: {
            changedCount: d.count,
            count: n,
            firstIndex: d.first,
            got: got[d.first],
            expected: e.source[d.first],
            maxAbsDiff: d.maxAbsDiff,
          },
        });
      }
      continue;
    }
    if (isHighPrecisionName(t.name)) {
      if (!policy.highPrecisionDTypes.includes(t.dtype)) {
        verdicts.push({
          code: 'F-LAYOUT-CONTRACT-007',
          status: 'fail',
          tensor: t.name,
          message: `stored as ${t.dtype}, but the converter's policy keeps this tensor in ${list(policy.highPrecisionDTypes)}`,
          evidence: {
            expected: policy.highPrecisionDTypes,
            got: t.dtype,
            dtype: t.dtype,
            allowed: policy.highPrecisionDTypes,
            rule: 'highPrecision',
            patterns: policy.highPrecision.filter((p) => new RegExp(p).test(t.name)),
          },
        });
      }
    } else if (!policy.quantizedDTypes.includes(t.dtype)) {
      verdicts.push({
        code: 'F-LAYOUT-CONTRACT-007',
        status: 'fail',
        tensor: t.name,
        message: `stored as ${t.dtype}, a type the converter's policy does not allow for this weight (allowed: ${list(policy.quantizedDTypes)})`,
        evidence: {
          expected: policy.quantizedDTypes,
          got: t.dtype,
          dtype: t.dtype,
          allowed: policy.quantizedDTypes,
          rule: 'quantizedDTypes',
        },
      });
    }
  }
  if (policy.expectsQuantized && quantizedCount === 0 && expected.some((e) => byName.has(e.name))) {
    const dtypes = [...new Set(file.tensors.map((t) => t.dtype))];
    verdicts.push({
      code: 'F-LAYOUT-CONTRACT-007',
      status: 'fail',
      message: `nothing is quantized: every tensor is ${dtypes.join(' or ')}, but the target expects ${list(policy.quantizedDTypes.filter(isQuantizedDType))} (a silent no-op, paiml/aprender#276)`,
      evidence: { dtypes, expected: policy.quantizedDTypes, got: dtypes, tensorCount: file.tensors.length },
    });
  }
  return {
    suite: 'layout',
    status: statusOf(verdicts),
    verdicts,
    metrics: { quantizedTensors: quantizedCount, oneDTensors: oneDChecked, oneDBitExactChecked: bitExactChecked },
  };
}
