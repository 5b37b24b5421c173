import { fp16Table, fp32ToFp16Bits } from './f16.js';
import { f32, roundf, truncToInt } from './f32.js';

/** Elements per Q8_0 block. */
export const QK8_0 = 32;
/** `f16 d; i8 qs[32]`. */
export const Q8_0_BYTES = 34;

/**
 * `quantize_row_q8_0_ref`, bit for bit: d = amax/127 in f32, id = d ? 1/d : 0, qs = roundf(x·id)
 * (halves away from zero), and the block stores fp16(d) while the quants used the f32 d.
 * `values.length` must be a multiple of 32.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % QK8_0 !== 0) {
    throw new Error(`Q8_0 needs a multiple of ${QK8_0} values, got ${values.length}`);
  }
  const nb = values.length / QK8_0;
  const out = new Uint8Array(nb * Q8_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const av = Math.abs(values[x0 + j] as number);
      // C `MAX(amax, v)` is `amax > v ? amax : v`: a NaN replaces amax, as in ggml.
      amax = amax > av ? amax : av;
    }
    const d = f32(amax / 127);
    // C truthiness: NaN is "true" (non-zero), unlike JS.
    const id = d !== 0 ? f32(1 / d) : 0;
    const o = i * Q8_0_BYTES;
    const h = fp32ToFp16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK8_0; j++) {
      const q = truncToInt(roundf(f32((values[x0 + j] as number) * id)));
      out[o + 2 + j] = q & 0xff;
    }
  }
  return out;
}

/** `dequantize_row_q8_0`: y = qs·fp16(d). `count` must be a multiple of 32. */
export function dequantizeQ8_0(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK8_0;
  for (let i = 0; i < nb; i++) {
    const o = i * Q8_0_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    for (let j = 0; j < QK8_0; j++) {
      out[i * QK8_0 + j] = (((bytes[o + 2 + j] as number) << 24) >> 24) * d;
    }
  }
  return out;
}

/**
 * Σ dequant(row)[i]·x[i] straight from the blocks. q·d is exact in f32 (8 × 11 significant bits),
 * so factoring d out of each block changes only the f64 rounding of the sum.
 */
export function dotQ8_0(bytes: Uint8Array, byteOffset: number, x: Float32Array, n: number): number {
  const t = fp16Table();
  const nb = n / QK8_0;
  let sum = 0;
  for (let i = 0; i < nb; i++) {
    const o = byteOffset + i * Q8_0_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const xb = i * QK8_0;
    let s = 0;
    for (let j = 0; j < QK8_0; j++) {
      s += (((bytes[o + 2 + j] as number) << 24) >> 24) * (x[xb + j] as number);
    }
    sum += d * s;
  }
  return sum;
}
