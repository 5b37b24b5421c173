/**
 * Codecs for the storage types beyond ggml's set (`EXTRA_DTYPES`):
 *
 * - APR's native quants, bit for bit as aprender's `AprV2Writer::add_q8_tensor` / `add_q4_tensor`
 *   and its `get_tensor_as_f32` (formats.md §2; `src/format/v2/writer.rs`, the `AprV2DequantExt`
 *   decoder). Both work over the flattened tensor, not per row.
 * - The plain numeric types and small floats that safetensors and APR carry (I8…U64, F64, BOOL, FP8),
 *   decoded to f32. F4, F6_* and C64 are listed by the readers but have no decoder here.
 *
 * Pure functions over byte arrays; no fs.
 */
import { EXTRA_DTYPES, type ExtraDType } from '../types.js';
import { fp16BitsToFp32, fp32ToFp16Bits } from './f16.js';
import { f32 } from './f32.js';

/** Elements per APR Q4 block and its bytes: `[f16 scale][16 B of nibbles]`. */
export const APR_Q4_BLOCK = 32;
export const APR_Q4_BLOCK_BYTES = 18;
/** `F16_MIN_NORMAL` (2^-14): the Q4 decoder zeroes a scale below it (GH-186), and NaN/Inf ones. */
export const F16_MIN_NORMAL = 2 ** -14;
/** The writer panics ("DENSITY VIOLATION") when more than 99% of a ≥1024-element tensor quantizes to 0. */
const DENSITY_MIN_ELEMENTS = 1024;
const DENSITY_MAX_ZERO_FRACTION = 0.99;

/** Bytes of an APR Q8 tensor of `n` elements: 4 + n, except that an empty tensor is written as 0 bytes. */
export function aprQ8ByteLength(n: number): number {
  return n === 0 ? 0 : 4 + n;
}

/** Bytes of an APR Q4 tensor of `n` elements: ceil(n/32)·18 (the last block zero-padded). */
export function aprQ4ByteLength(n: number): number {
  return Math.ceil(n / APR_Q4_BLOCK) * APR_Q4_BLOCK_BYTES;
}

export interface AprQuantOptions {
  /**
   * Throw as aprender's writer panics when N ≥ 1024 and more than 99% of the codes are zero
   * (F-DATA-QUALITY-001 at write time). Default true; false writes such tensors anyway.
   */
  checkDensity?: boolean;
}

/** Rust `f32::round`: halves away from zero (JS Math.round sends -2.5 to -2). */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** `(x).round().clamp(lo, hi) as i8`: Rust's float→int cast maps NaN to 0. */
function roundClampI8(x: number, lo: number, hi: number): number {
  if (Number.isNaN(x)) return 0;
  return Math.min(hi, Math.max(lo, roundHalfAway(x)));
}

/** `iter().map(abs).fold(0.0, f32::max)`: f32::max ignores a NaN operand, as `>` does here. */
function maxAbs(values: Float32Array, start: number, end: number): number {
  let m = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(values[i] as number);
    if (a > m) m = a;
  }
  return m;
}

/**
 * APR Q8 (`add_q8_tensor`): `scale = max|x|/127` in f32 (1.0 when every value is 0), then
 * `q = round(x/scale)` (f32 division, halves away from zero) clamped to ±127. Layout `[f32 scale][i8 × N]`.
 */
export function quantizeAprQ8(values: Float32Array, options: AprQuantOptions = {}): Uint8Array {
  const n = values.length;
  if (n === 0) return new Uint8Array(0);
  const amax = maxAbs(values, 0, n);
  const scale = amax === 0 ? 1 : f32(amax / 127);
  const out = new Uint8Array(4 + n);
  new DataView(out.buffer).setFloat32(0, scale, true);
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const q = roundClampI8(f32((values[i] as number) / scale), -127, 127);
    out[4 + i] = q & 0xff;
    if (q === 0) zeros++;
  }
  if ((options.checkDensity ?? true) && n >= DENSITY_MIN_ELEMENTS && zeros / n > DENSITY_MAX_ZERO_FRACTION) {
    throw new RangeError(
      `APR Q8 density violation: ${((zeros / n) * 100).toFixed(1)}% zeros (threshold 99%), as aprender's add_q8_tensor panics`,
    );
  }
  return out;
}

/** APR Q8 → f32: `f32(q as i8) * scale`, the stored f32 scale used as is (no NaN/Inf clamp, unlike Q4). */
export function dequantizeAprQ8(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(count);
  if (count === 0) return out;
  const scale = new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
  for (let i = 0; i < count; i++) out[i] = f32((((bytes[4 + i] as number) << 24) >> 24) * scale);
  return out;
}

/**
 * APR Q4 (`add_q4_tensor`): blocks of 32 over the flattened tensor; per block `scale = max|x|/7` in f32
 * (1.0 if zero), stored as f16 (round to nearest even — aprender's `apr-format` leaf; releases before
 * issue #2231 used trueno's non-RNE encoder, see the report), `q = round(x/scale)` with the *f32* scale,
 * clamped to [−8, 7], nibble q+8. Even index → low nibble, odd → high nibble; the tail of the last
 * block stays 0 (which decodes as −8·scale, never read).
 */
export function quantizeAprQ4(values: Float32Array, options: AprQuantOptions = {}): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(aprQ4ByteLength(n));
  let zeros = 0;
  for (let b = 0, o = 0; b * APR_Q4_BLOCK < n; b++, o += APR_Q4_BLOCK_BYTES) {
    const start = b * APR_Q4_BLOCK;
    const end = Math.min(start + APR_Q4_BLOCK, n);
    const amax = maxAbs(values, start, end);
    const scale = amax === 0 ? 1 : f32(amax / 7);
    const bits = fp32ToFp16Bits(scale);
    out[o] = bits & 0xff;
    out[o + 1] = bits >>> 8;
    for (let i = 0; i < end - start; i++) {
      const q = roundClampI8(f32((values[start + i] as number) / scale), -8, 7);
      if (q === 0) zeros++;
      const nibble = (q + 8) & 0x0f;
      const at = o + 2 + (i >> 1);
      out[at] = i % 2 === 0 ? nibble : (out[at] as number) | (nibble << 4);
    }
  }
  if ((options.checkDensity ?? true) && n >= DENSITY_MIN_ELEMENTS && zeros / n > DENSITY_MAX_ZERO_FRACTION) {
    throw new RangeError(
      `APR Q4 density violation: ${((zeros / n) * 100).toFixed(1)}% zeros (threshold 99%), as aprender's add_q4_tensor panics`,
    );
  }
  return out;
}

/** APR Q4 → f32, as aprender's `dequantize_q4`: a NaN, Inf or subnormal (< 2^-14) f16 scale decodes as 0. */
export function dequantizeAprQ4(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(count);
  for (let b = 0, o = 0; b * APR_Q4_BLOCK < count; b++, o += APR_Q4_BLOCK_BYTES) {
    const raw = fp16BitsToFp32((bytes[o] as number) | ((bytes[o + 1] as number) << 8));
    const scale = Number.isFinite(raw) && Math.abs(raw) >= F16_MIN_NORMAL ? raw : 0;
    const start = b * APR_Q4_BLOCK;
    const m = Math.min(APR_Q4_BLOCK, count - start);
    for (let i = 0; i < m; i++) {
      const byte = bytes[o + 2 + (i >> 1)] as number;
      const nibble = i % 2 === 0 ? byte & 0x0f : byte >> 4;
      out[start + i] = (nibble - 8) * scale; // exact: a 4-bit integer times an f16
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Plain numeric types and small floats.

type PlainDType = Exclude<ExtraDType, 'APR_Q8' | 'APR_Q4'>;

/** The extra types that decode to f32 (F4, F6_E2M3, F6_E3M2 and C64 do not). */
export const DECODABLE_EXTRA_DTYPES: ReadonlySet<ExtraDType> = new Set<ExtraDType>(
  EXTRA_DTYPES.filter((d) => d !== 'F4' && d !== 'F6_E2M3' && d !== 'F6_E3M2' && d !== 'C64'),
);

/** One 8-bit float with `e` exponent and `m` mantissa bits, exponent bias `bias`; NaN/Inf handled by the caller. */
function minifloat(byte: number, e: number, m: number, bias: number): number {
  const sign = byte & 0x80 ? -1 : 1;
  const exp = (byte >> m) & ((1 << e) - 1);
  const man = byte & ((1 << m) - 1);
  return exp === 0 ? sign * man * 2 ** (1 - bias - m) : sign * (2 ** m + man) * 2 ** (exp - bias - m);
}

/**
 * The 256 values of each FP8 format. E4M3 is OCP "E4M3FN" (no Inf, NaN = S.1111.111), E5M2 is IEEE-like,
 * the FNUZ variants (bias 8 / 16) have one NaN (0x80) and no −0 or Inf, E8M0 is 2^(e−127) with NaN = 0xFF.
 */
const FP8_DECODERS: Record<'F8_E4M3' | 'F8_E5M2' | 'F8_E8M0' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ', (b: number) => number> = {
  F8_E4M3: (b) => ((b & 0x7f) === 0x7f ? NaN : minifloat(b, 4, 3, 7)),
  F8_E5M2: (b) => ((b & 0x7c) === 0x7c ? ((b & 3) === 0 ? (b & 0x80 ? -Infinity : Infinity) : NaN) : minifloat(b, 5, 2, 15)),
  F8_E8M0: (b) => (b === 0xff ? NaN : 2 ** (b - 127)),
  F8_E4M3FNUZ: (b) => (b === 0x80 ? NaN : minifloat(b, 4, 3, 8)),
  F8_E5M2FNUZ: (b) => (b === 0x80 ? NaN : minifloat(b, 5, 2, 16)),
};
const fp8Tables = new Map<keyof typeof FP8_DECODERS, Float32Array>();

function fp8Table(dtype: keyof typeof FP8_DECODERS): Float32Array {
  let t = fp8Tables.get(dtype);
  if (t === undefined) {
    t = Float32Array.from({ length: 256 }, (_, b) => FP8_DECODERS[dtype](b));
    fp8Tables.set(dtype, t);
  }
  return t;
}

/** Decode `count` elements of an extra dtype to f32 (bytes already checked to be long enough). */
export function dequantizeExtra(dtype: ExtraDType, bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  if (dtype === 'APR_Q8') return dequantizeAprQ8(bytes, count);
  if (dtype === 'APR_Q4') return dequantizeAprQ4(bytes, count);
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const plain: PlainDType = dtype;
  switch (plain) {
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      return out;
    case 'U8':
      for (let i = 0; i < count; i++) out[i] = dv.getUint8(i);
      return out;
    case 'BOOL':
      for (let i = 0; i < count; i++) out[i] = dv.getUint8(i) === 0 ? 0 : 1;
      return out;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    case 'U16':
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    case 'U32':
      for (let i = 0; i < count; i++) out[i] = dv.getUint32(4 * i, true);
      return out;
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    case 'U64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigUint64(8 * i, true));
      return out;
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'F8_E8M0':
    case 'F8_E4M3FNUZ':
    case 'F8_E5M2FNUZ': {
      const t = fp8Table(plain);
      for (let i = 0; i < count; i++) out[i] = t[bytes[i] as number] as number;
      return out;
    }
    case 'F4':
    case 'F6_E2M3':
    case 'F6_E3M2':
    case 'C64':
      throw new RangeError(`dequantize: ${dtype} has no f32 decoder (sub-byte packing / complex values are not interpreted)`);
  }
}

/**
 * Encode f32 values as an extra dtype. APR_Q8/APR_Q4 quantize as aprender does (with the density check);
 * F64 widens exactly. The integer, boolean and small-float types have no encoder: throws.
 */
export function quantizeExtra(dtype: ExtraDType, values: Float32Array, options: AprQuantOptions = {}): Uint8Array {
  switch (dtype) {
    case 'APR_Q8':
      return quantizeAprQ8(values, options);
    case 'APR_Q4':
      return quantizeAprQ4(values, options);
    case 'F64':
      return new Uint8Array(Float64Array.from(values).buffer);
    default:
      throw new Error(`quantize: no ${dtype} encoder (write its bytes directly)`);
  }
}
