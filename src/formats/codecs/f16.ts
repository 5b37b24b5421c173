import { bitsToF32, f32, f32ToBits } from './f32.js';

/** 2^112 and 2^-110: the constants of ggml's (Maratyszcza FP16) branch-free conversion. */
const SCALE_TO_INF = bitsToF32(0x77800000);
const SCALE_TO_ZERO = bitsToF32(0x08800000);

/**
 * fp32 → fp16 bits exactly as ggml's `ggml_compute_fp32_to_fp16`: round to nearest even,
 * overflow to ±Inf, gradual underflow to subnormals, NaN → 0x7E00 with the sign kept.
 */
export function fp32ToFp16Bits(value: number): number {
  const x = f32(value);
  let base = f32(f32(Math.abs(x) * SCALE_TO_INF) * SCALE_TO_ZERO);
  const w = f32ToBits(x);
  const shl1W = (w * 2) % 2 ** 32;
  const sign = w & 0x80000000;
  let bias = shl1W - (shl1W % 2 ** 24); // shl1W & 0xFF000000, kept unsigned
  if (bias < 0x71000000) bias = 0x71000000;
  base = f32(bitsToF32((bias >>> 1) + 0x07800000) + base);
  const bits = f32ToBits(base);
  const expBits = (bits >>> 13) & 0x7c00;
  const mantissaBits = bits & 0x0fff;
  const nonsign = expBits + mantissaBits;
  return ((sign >>> 16) | (shl1W > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** fp16 bits → the f32 value (exact; every fp16 is representable in f32). */
export function fp16BitsToFp32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

let table: Float32Array | undefined;

/** All 65 536 fp16 values as f32, built on first use (256 KiB). */
export function fp16Table(): Float32Array {
  if (table === undefined) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = fp16BitsToFp32(h);
  }
  return table;
}

/** Encode f32 values as little-endian fp16 (ggml `ggml_fp32_to_fp16_row`). */
export function quantizeF16(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const h = fp32ToFp16Bits(values[i] as number);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** Decode `count` little-endian fp16 values starting at `bytes[0]`. */
export function dequantizeF16(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = t[(bytes[2 * i] as number) | ((bytes[2 * i + 1] as number) << 8)] as number;
  }
  return out;
}

/** Σ fp16(row)[i]·x[i] over `n` elements starting at `bytes[byteOffset]`, accumulated in f64. */
export function dotF16(bytes: Uint8Array, byteOffset: number, x: Float32Array, n: number): number {
  const t = fp16Table();
  let sum = 0;
  let p = byteOffset;
  for (let i = 0; i < n; i++, p += 2) {
    sum += (t[(bytes[p] as number) | ((bytes[p + 1] as number) << 8)] as number) * (x[i] as number);
  }
  return sum;
}
