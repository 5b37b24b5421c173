import { bitsToF32, f32ToBits } from './f32.js';

/**
 * fp32 → bf16 bits as ggml's `ggml_compute_fp32_to_bf16`: round to nearest even on the upper 16
 * bits; a NaN keeps its upper bits and is made quiet with `| 0x40`. (Current ggml no longer flushes
 * subnormals to zero; they round like any other value.)
 */
export function fp32ToBf16Bits(value: number): number {
  const u = f32ToBits(value);
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  // u + 0x7fff + lsb never exceeds 2^32 for a non-NaN u, so plain arithmetic is exact.
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** bf16 bits → f32 (`bits << 16`). */
export function bf16BitsToFp32(h: number): number {
  return bitsToF32((h & 0xffff) * 65536);
}

/** Encode f32 values as little-endian bf16 (ggml `ggml_fp32_to_bf16_row_ref`). */
export function quantizeBf16(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const h = fp32ToBf16Bits(values[i] as number);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/** Decode `count` little-endian bf16 values starting at `bytes[0]`. */
export function dequantizeBf16(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) {
    bits[i] = ((bytes[2 * i] as number) << 16) | ((bytes[2 * i + 1] as number) << 24);
  }
  return out;
}

/** Σ bf16(row)[i]·x[i] over `n` elements starting at `bytes[byteOffset]`, accumulated in f64. */
export function dotBf16(bytes: Uint8Array, byteOffset: number, x: Float32Array, n: number): number {
  let sum = 0;
  let p = byteOffset;
  for (let i = 0; i < n; i++, p += 2) {
    sum += bf16BitsToFp32((bytes[p] as number) | ((bytes[p + 1] as number) << 8)) * (x[i] as number);
  }
  return sum;
}
