import { statusOf } from './codes.js';
import { sqnrDb } from '../metrics.js';
import type { ByteSource } from '../formats/byte-source.js';
import { canDequantize, dequantize, fp32ToBf16Bits, fp32ToFp16Bits, tensorByteLength, TYPE_INFO } from '../formats/codecs/index.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import {
  ggufToHf,
  isMappedArch,
  permuteQk,
  reorderQkvBlocks,
  transpose,
  unpermuteQk,
  type LayoutTransform,
  type MappedArch,
} from '../formats/name-map.js';
import type { DType, ModelFile, TensorEntry } from '../formats/types.js';
import { commonDims, type HfConfig } from '../zoo/types.js';
import type { CheckResult, Verdict } from './codes.js';
import type { ExpectedTensor } from './manifest.js';
import { referenceQuantization } from './reference-codec.js';
import { FIDELITY_MARGIN_DB, type Tolerance } from './tolerances.js';

/**
 * Below this SQNR a tensor is wrong in a way rounding cannot explain, so the F16/BF16 rounding bit
 * check (F-FIDELITY-003) is not run on it: bf16 RNE is ~50 dB and bf16 truncation still ~45 dB on
 * Gaussian weights; a transposed or permuted tensor is near 0 dB.
 */
export const ROUNDING_CHECK_MIN_SQNR_DB = 30;

/** Row shifts tried by the transform search: ±1 … ±MAX_ROW_SHIFT rows (an offset error of a few rows). */
export const MAX_ROW_SHIFT = 4;

/** Storage types that hold f32 values losslessly: such a tensor must equal its source bit for bit. */
const LOSSLESS: ReadonlySet<DType> = new Set<DType>(['F32', 'F64']);

/** What the fidelity check needs beyond the manifest: the source config (arch and head counts for the transform search). */
export interface FidelityOptions {
  /** Source config; without it arch and head counts come from the file's own metadata (GGUF) when present. */
  config?: HfConfig;
}

/** Blocks of a block-quantized tensor whose bytes differ from the reference quantizer's (undefined for non-block types). */
function blockDifferences(dtype: DType, ref: Uint8Array, got: Uint8Array): { blocks: number; differing: number } | undefined {
  const info = TYPE_INFO[dtype];
  // APR_Q8/APR_Q4 span the flattened tensor (no self-contained blocks); element types have nothing to count.
  if (dtype === 'APR_Q8' || dtype === 'APR_Q4' || info.blockSize === 1 || ref.length !== got.length) return undefined;
  const blocks = ref.length / info.typeSize;
  let differing = 0;
  for (let b = 0; b < blocks; b++) {
    for (let i = b * info.typeSize; i < (b + 1) * info.typeSize; i++) {
      if (ref[i] !== got[i]) {
        differing++;
        break;
      }
    }
  }
  return { blocks, differing };
}

/** SQNR of file rows [max(0,s), rows+min(0,s)) against source rows shifted by s (the vacated rows are unknown, so not compared). */
function shiftedSqnrDb(x: Float32Array, y: Float32Array, rows: number, cols: number, shift: number): number {
  let xx = 0;
  let dd = 0;
  for (let r = Math.max(0, shift); r < rows + Math.min(0, shift); r++) {
    const fy = r * cols;
    const fx = (r - shift) * cols;
    for (let c = 0; c < cols; c++) {
      const a = x[fx + c] as number;
      const d = a - (y[fy + c] as number);
      xx += a * a;
      dd += d * d;
    }
  }
  if (Number.isNaN(dd)) return -Infinity;
  return dd === 0 ? (xx === 0 ? -Infinity : Infinity) : 10 * Math.log10(xx / dd);
}

const showDb = (v: number): string => (v === Infinity ? '∞' : v === -Infinity ? '−∞' : v.toFixed(1));

const QKV_ORDERS: readonly (readonly [number, number, number])[] = [
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];
const QKV = ['q', 'k', 'v'] as const;

interface Candidate {
  /** Short id of the transform (`permute-k n_head=6`, `transpose`, `qkv-order k,q,v`, `row-shift +1`). */
  transform: string;
  /** What the converter must have done. */
  diagnosis: string;
  /** The source transformed, in the file's flat order; or a row shift judged on the overlapping rows. */
  values?: () => Float32Array;
  shift?: { rows: number; cols: number; by: number };
}

interface HeadInfo {
  arch: MappedArch | undefined;
  heads: number | undefined;
  kvHeads: number | undefined;
}

function headInfo(file: ModelFile, opts: FidelityOptions): HeadInfo {
  if (opts.config) {
    const d = commonDims(opts.config);
    return { arch: opts.config.model_type, heads: d.heads, kvHeads: d.kvHeads };
  }
  const a = file.metadata.get('general.architecture');
  const arch = isMappedArch(a) ? a : undefined;
  const n = (k: string): number | undefined => {
    const v = file.metadata.get(`${arch ?? ''}.${k}`);
    return typeof v === 'number' ? v : undefined;
  };
  const heads = n('attention.head_count');
  return { arch, heads, kvHeads: n('attention.head_count_kv') ?? heads };
}

/** Which projection a tensor is, from its GGUF or HF name. */
function projectionOf(e: ExpectedTensor): 'q' | 'k' | 'qkv' | undefined {
  const names = `${e.name} ${e.hfName}`;
  if (/(attn_q\.|q_proj\.)/.test(names)) return 'q';
  if (/(attn_k\.|k_proj\.)/.test(names)) return 'k';
  if (/(attn_qkv\.|c_attn\.)/.test(names)) return 'qkv';
  return undefined;
}

/**
 * The transforms of the SOURCE tried when a tensor fails (bug catalogue classes G, I, J, Q, T): the
 * layout step not applied, llama's Q/K permutation with the wrong head count (n_head for K, llama.cpp
 * PR 3364's n_head // n_head_kv), inverted or applied twice, a permutation on an arch that has none,
 * a transpose, GPT-2's fused q|k|v blocks in another order, and rows shifted by ±1…±MAX_ROW_SHIFT.
 */
function candidates(e: ExpectedTensor, file: ModelFile, info: HeadInfo): Candidate[] {
  const out: Candidate[] = [];
  const rows = e.shape[0] ?? 1;
  const cols = e.shape.length >= 2 ? e.source.length / rows : 1;
  const is2d = e.shape.length === 2;
  const transform: LayoutTransform = file.format === 'gguf' && info.arch ? (ggufToHf(info.arch, e.name)?.transform ?? 'none') : 'none';
  const proj = projectionOf(e);
  const { heads, kvHeads } = info;
  const correctHeads = transform === 'permute-q' ? heads : transform === 'permute-k' ? kvHeads : undefined;
  // The HF-layout source (the layout step undone).
  let hf: Float32Array | undefined;
  const hfValues = (): Float32Array => {
    if (hf) return hf;
    if (transform === 'transpose') hf = transpose(e.source, rows, cols);
    else if ((transform === 'permute-q' || transform === 'permute-k') && correctHeads !== undefined)
      hf = unpermuteQk(e.source, rows, cols, correctHeads);
    else hf = e.source;
    return hf;
  };
  if (transform === 'transpose') {
    out.push({
      transform: 'no-transpose',
      diagnosis: "the converter did not transpose GPT-2's Conv1D weight from [in, out] to [out, in]",
      values: hfValues,
    });
  } else if ((transform === 'permute-q' || transform === 'permute-k') && correctHeads !== undefined) {
    out.push({
      transform: 'no-permute',
      diagnosis: `the converter did not apply llama's ${proj === 'k' ? 'K' : 'Q'} permutation for NORM RoPE (llama.cpp PR 7481, TinyLlama#24)`,
      values: hfValues,
    });
  }
  if ((proj === 'q' || proj === 'k') && rows >= 2) {
    // Head counts a buggy converter plausibly used: the right ones swapped, and PR 3364's n_head // n_head_kv.
    const options = new Set<number>();
    for (const h of [heads, kvHeads, heads !== undefined && kvHeads ? Math.floor(heads / kvHeads) : undefined])
      if (h !== undefined && h > 0) options.add(h);
    if (options.size === 0) for (let h = 1; h <= Math.min(rows / 2, 64); h++) options.add(h);
    const wants = proj === 'k' ? 'n_head_kv' : 'n_head';
    const named = (m: number): string => {
      const names = [
        m === heads ? 'n_head' : undefined,
        m === kvHeads ? 'n_head_kv' : undefined,
        heads !== undefined && kvHeads && m === Math.floor(heads / kvHeads) && m !== heads && m !== kvHeads
          ? 'n_head // n_head_kv'
          : undefined,
      ].filter(Boolean);
      return names.length ? `${names.join(' = ')} = ${m}` : `${m}`;
    };
    for (const m of options) {
      if (rows % m !== 0 || (rows / m) % 2 !== 0) continue;
      const who = proj === 'k' ? 'K' : 'Q';
      if (correctHeads !== undefined) {
        if (m !== correctHeads) {
          const hint = m === Math.floor((heads ?? 0) / (kvHeads || 1)) && m !== heads ? ' (llama.cpp PR 3364)' : ' (transformers PR 31788)';
          out.push({
            transform: `permute-${proj} n_head=${m}`,
            diagnosis: `the converter permuted ${who} with ${named(m)} heads instead of ${wants} = ${correctHeads}${hint}`,
            values: () => permuteQk(hfValues(), rows, cols, m),
          });
        }
        out.push({
          transform: `unpermute-${proj} n_head=${m}`,
          diagnosis: `the converter applied the inverse of llama's ${who} permutation (${named(m)} heads)`,
          values: () => unpermuteQk(hfValues(), rows, cols, m),
        });
        out.push({
          transform: `permute-twice-${proj} n_head=${m}`,
          diagnosis: `the converter applied llama's ${who} permutation twice (mlx-vlm#1521)`,
          values: () => permuteQk(e.source, rows, cols, m),
        });
      } else {
        out.push({
          transform: `permute-${proj} n_head=${m}`,
          diagnosis: `the converter applied llama's ${who} permutation (${named(m)} heads) to an architecture that does not use it${info.arch === 'qwen2' ? ' (qwen2 runs NEOX RoPE on the HF layout)' : ''}`,
          values: () => permuteQk(e.source, rows, cols, m),
        });
      }
    }
  }
  if (proj === 'qkv') {
    // GGUF (and any [out, in] layout) stacks q|k|v along rows; HF's Conv1D [in, out] along columns.
    const axis: 0 | 1 = transform === 'transpose' || !is2d || rows === 3 * cols ? 0 : 1;
    const blocksDivide = axis === 0 ? rows % 3 === 0 : cols % 3 === 0;
    if (blocksDivide) {
      for (const order of QKV_ORDERS) {
        const label = order.map((i) => QKV[i]).join(',');
        out.push({
          transform: `qkv-order ${label}`,
          diagnosis: `the fused attention tensor holds its blocks as ${label} instead of q,k,v (mlxcel PR 928)`,
          values: () => reorderQkvBlocks(e.source, rows, cols, axis, order),
        });
      }
    }
  }
  if (is2d && transform !== 'transpose') {
    out.push({
      transform: 'transpose',
      diagnosis:
        rows === cols
          ? 'the converter transposed a square weight (no shape check can see it; aprender PR 1466)'
          : 'the converter transposed the weight',
      values: () => transpose(e.source, rows, cols),
    });
  }
  for (let s = 1; s <= MAX_ROW_SHIFT && 2 * s <= rows; s++) {
    for (const by of [s, -s]) {
      const dir = by > 0 ? `down: file row i holds source row i−${s}` : `up: file row i holds source row i+${s}`;
      out.push({
        transform: `row-shift ${by > 0 ? '+' : ''}${by}`,
        diagnosis: `rows shifted ${dir} (an offset error)`,
        shift: { rows, cols, by },
      });
    }
  }
  return out;
}

/** F-FIDELITY-003: stored 16-bit floats vs the round-to-nearest-even of the source. */
function roundingCheck(
  dtype: 'F16' | 'BF16',
  bytes: Uint8Array,
  x: Float32Array,
  y: Float32Array,
): { off: number; signedMeanError: number; magnitudeBias: number; firstIndex: number } {
  const toBits = dtype === 'F16' ? fp32ToFp16Bits : fp32ToBf16Bits;
  const expMask = dtype === 'F16' ? 0x7c00 : 0x7f80;
  const mantMask = dtype === 'F16' ? 0x03ff : 0x007f;
  const isNaNBits = (h: number): boolean => (h & expMask) === expMask && (h & mantMask) !== 0;
  let off = 0;
  let firstIndex = -1;
  let sumErr = 0;
  let sumAbsErr = 0;
  let sumAbs = 0;
  for (let i = 0; i < x.length; i++) {
    const got = (bytes[2 * i] as number) | ((bytes[2 * i + 1] as number) << 8);
    const want = toBits(x[i] as number);
    const xi = x[i] as number;
    const yi = y[i] as number;
    if (Number.isFinite(xi) && Number.isFinite(yi)) {
      sumErr += yi - xi;
      sumAbsErr += Math.abs(yi) - Math.abs(xi);
      sumAbs += Math.abs(xi);
    }
    if (got === want || ((got & 0x7fff) === 0 && (want & 0x7fff) === 0) || (isNaNBits(got) && isNaNBits(want))) continue;
    off++;
    if (firstIndex < 0) firstIndex = i;
  }
  return { off, signedMeanError: x.length ? sumErr / x.length : 0, magnitudeBias: sumAbs ? sumAbsErr / sumAbs : 0, firstIndex };
}

/**
 * L4: every tensor (2-D weights and 1-D) decoded to f32 and compared with its source in the file's
 * layout (manifest `source`).
 *
 * - F-FIDELITY-001: SQNR = 20·log10(‖x‖/‖x−y‖) below the bound. The bound is `tol.weightSqnrMinDb`,
 *   except that a tensor stored losslessly (F32) must equal its source exactly whatever the target
 *   (Infinity = bit-exact). An all-zero source tensor is never scored by SQNR or cosine (aprender#2394):
 *   it passes when the file's tensor is all zeros too, and fails (without a ratio) otherwise.
 * - F-FIDELITY-002: for a failing tensor, the transforms of the source in `candidates` are tried; the
 *   best one that makes the SQNR pass is named, with what the converter must have done.
 * - F-FIDELITY-003: an F16/BF16 tensor whose stored bits are not the round-to-nearest-even of the
 *   source f32 (truncation, `>> 16`): the fraction of values off, the signed mean error and the
 *   magnitude bias Σ(|y|−|x|)/Σ|x| (truncation toward zero is negative; cosine cannot see it).
 *
 * Tensors missing, of another element count, not decodable or flagged by the reader are skipped (L0/L2
 * report them). Metrics: `sqnrDb.<tensor>` for every tensor that is not bit-exact, `worstSqnrDb`
 * (omitted when every tensor is exact), and counts.
 */
export function checkFidelity(
  file: ModelFile,
  src: ByteSource,
  expected: ExpectedTensor[],
  tol: Tolerance,
  opts: FidelityOptions = {},
): CheckResult {
  const verdicts: Verdict[] = [];
  const metrics: Record<string, number> = {};
  const byName = new Map<string, TensorEntry>(file.tensors.map((t) => [t.name, t]));
  const flagged = new Set(file.issues.map((i) => i.tensor).filter((t) => t !== undefined));
  const info = headInfo(file, opts);
  let worst = Infinity;
  let compared = 0;
  let exact = 0;
  let skipped = 0;
  let zeroSource = 0;
  let blocks = 0;
  let blocksDiffering = 0;
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== e.source.length || flagged.has(t.name) || !canDequantize(t.dtype) || tensorByteLength(t.dtype, n) !== t.byteLength) {
      skipped++;
      continue;
    }
    let bytes: Uint8Array;
    let y: Float32Array;
    try {
      bytes = readTensorBytes(src, t);
      y = dequantize(t.dtype, bytes, n);
    } catch {
      skipped++;
      continue;
    }
    compared++;
    const x = e.source;
    let isZeroSource = true;
    for (const v of x) {
      if (v !== 0) {
        isZeroSource = false;
        break;
      }
    }
    if (isZeroSource) {
      zeroSource++;
      let maxAbs = 0;
      for (const v of y) maxAbs = Math.max(maxAbs, Number.isNaN(v) ? Infinity : Math.abs(v));
      if (maxAbs > 0) {
        verdicts.push({
          code: 'F-FIDELITY-001',
          status: 'fail',
          tensor: t.name,
          message: `the source tensor is all zeros, the file's is not (max |value| ${maxAbs.toPrecision(3)})`,
          evidence: { metric: 'maxAbs', got: maxAbs, bound: 0, minPassingBound: maxAbs, sourceIsZero: true, maxAbs, dtype: t.dtype },
        });
      } else exact++;
      continue;
    }
    // Judged by the type the file stores the tensor in: the harness's own bit-exact codec of that type, on the source,
    // reaches `ref.sqnrDb`; a correct converter storing that type reaches it too (within the margin).
    const ref = LOSSLESS.has(t.dtype) ? undefined : referenceQuantization(t.dtype, x, n);
    const bound = LOSSLESS.has(t.dtype)
      ? Infinity
      : ref === undefined
        ? tol.weightSqnrMinDb
        : ref.sqnrDb === Infinity
          ? Infinity
          : ref.sqnrDb - FIDELITY_MARGIN_DB;
    const sqnr = sqnrDb(x, y);
    if (sqnr === Infinity) exact++;
    else metrics[`sqnrDb.${t.name}`] = sqnr;
    if (Number.isFinite(bound)) metrics[`sqnrBoundDb.${t.name}`] = bound;
    const diff = ref === undefined ? undefined : blockDifferences(t.dtype, ref.bytes, bytes);
    if (diff !== undefined) {
      blocks += diff.blocks;
      blocksDiffering += diff.differing;
    }
    if (sqnr < worst) worst = sqnr;
    if (sqnr < bound) {
      const against =
        ref === undefined
          ? `the target's bound ${bound} dB`
          : `${showDb(ref.sqnrDb)} dB from the ${t.dtype} reference quantizer, margin ${FIDELITY_MARGIN_DB} dB`;
      verdicts.push({
        code: 'F-FIDELITY-001',
        status: 'fail',
        tensor: t.name,
        message: `SQNR ${showDb(sqnr)} dB vs the source, bound ${bound === Infinity ? 'bit-exact (stored as ' + t.dtype + ')' : `${showDb(bound)} dB (${against})`}${diff === undefined ? '' : `; ${diff.differing} of ${diff.blocks} blocks differ from the reference quantizer's`}`,
        evidence: {
          metric: 'sqnrDb',
          got: Number.isFinite(sqnr) ? sqnr : String(sqnr),
          bound: Number.isFinite(bound) ? bound : 'exact',
          minPassingBound: Number.isFinite(sqnr) ? sqnr : null,
          referenceSqnrDb: ref === undefined ? null : Number.isFinite(ref.sqnrDb) ? ref.sqnrDb : String(ref.sqnrDb),
          blocksDiffering: diff?.differing ?? null,
          blocks: diff?.blocks ?? null,
          dtype: t.dtype,
        },
      });
      let best: { c: Candidate; sqnr: number } | undefined;
      for (const c of candidates(e, file, info)) {
        let s: number;
        try {
          s = c.shift ? shiftedSqnrDb(x, y, c.shift.rows, c.shift.cols, c.shift.by) : c.values ? sqnrDb(c.values(), y) : -Infinity;
        } catch {
          continue; // a transform that does not apply to this shape
        }
        if (s >= bound && (best === undefined || s > best.sqnr)) best = { c, sqnr: s };
      }
      if (best) {
        verdicts.push({
          code: 'F-FIDELITY-002',
          status: 'fail',
          tensor: t.name,
          message: `values match the source after ${best.c.transform} (SQNR ${showDb(best.sqnr)} dB, was ${showDb(sqnr)} dB): ${best.c.diagnosis}`,
          evidence: {
            expected: 'none',
            got: best.c.transform,
            transform: best.c.transform,
            diagnosis: best.c.diagnosis,
            sqnrDbAfter: Number.isFinite(best.sqnr) ? best.sqnr : String(best.sqnr),
            sqnrDb: Number.isFinite(sqnr) ? sqnr : String(sqnr),
          },
        });
      }
    }
    if ((t.dtype === 'F16' || t.dtype === 'BF16') && sqnr >= ROUNDING_CHECK_MIN_SQNR_DB) {
      const r = roundingCheck(t.dtype, bytes, x, y);
      if (r.off > 0) {
        const frac = r.off / n;
        verdicts.push({
          code: 'F-FIDELITY-003',
          status: 'fail',
          tensor: t.name,
          message: `${(100 * frac).toFixed(1)}% of ${t.dtype} values (${r.off} of ${n}) are not the round-to-nearest-even of the source f32 (first at [${r.firstIndex}]); signed mean error ${r.signedMeanError.toExponential(2)}, magnitude bias ${(100 * r.magnitudeBias).toFixed(3)}%${r.magnitudeBias < 0 ? ' (toward zero: truncation)' : ''}`,
          evidence: {
            metric: 'offFraction',
            got: frac,
            bound: 0,
            minPassingBound: frac,
            offCount: r.off,
            count: n,
            offFraction: frac,
            firstIndex: r.firstIndex,
            signedMeanError: r.signedMeanError,
            magnitudeBias: r.magnitudeBias,
            sqnrDb: Number.isFinite(sqnr) ? sqnr : String(sqnr),
            dtype: t.dtype,
          },
        });
      }
    }
  }
  if (Number.isFinite(worst)) metrics['worstSqnrDb'] = worst;
  metrics['comparedTensors'] = compared;
  metrics['exactTensors'] = exact;
  metrics['skippedTensors'] = skipped;
  metrics['zeroSourceTensors'] = zeroSource;
  // Information, not failure: an importance-matrix quantizer legitimately chooses other blocks.
  metrics['blocks'] = blocks;
  metrics['blocksDifferingFromReference'] = blocksDiffering;
  return { suite: 'fidelity', status: statusOf(verdicts), verdicts, metrics };
}
