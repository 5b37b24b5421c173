import { fp16Table, fp32ToFp16Bits } from './f16.js';
import { f32, truncToInt } from './f32.js';
import { DEFAULT_FMA, mulAdd, type LegacyQuantOptions } from './q4_0.js';
import { blockMinMax } from './q4_1.js';
import { readU32, writeU32 } from './q5_0.js';

/** Elements per Q5_1 block. */
export const QK5_1 = 32;
/** `f16 d; f16 m; u8 qh[4]; u8 qs[16]`. */
export const Q5_1_BYTES = 24;

/**
 * `quantize_row_q5_1_ref`: d = (max − min)/31, m = min, q = (uint8)((x − min)·id + 0.5) — no clamp
 * in the C code, only the low 5 bits are stored.
 */
export function quantizeQ5_1(values: Float32Array, options: LegacyQuantOptions = {}): Uint8Array {
  const fma = options.fma ?? DEFAULT_FMA;
  if (values.length % QK5_1 !== 0) {
    throw new Error(`Q5_1 needs a multiple of ${QK5_1} values, got ${values.length}`);
  }
  const nb = values.length / QK5_1;
  const out = new Uint8Array(nb * Q5_1_BYTES);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK5_1;
    const [min, max] = blockMinMax(values, x0, QK5_1);
    const d = f32(f32(max - min) / 31);
    const id = d !== 0 ? f32(1 / d) : 0;
    const o = i * Q5_1_BYTES;
    const hd = fp32ToFp16Bits(d);
    const hm = fp32ToFp16Bits(min);
    out[o] = hd & 0xff;
    out[o + 1] = hd >>> 8;
    out[o + 2] = hm & 0xff;
    out[o + 3] = hm >>> 8;
    let qh = 0;
    for (let j = 0; j < QK5_1 / 2; j++) {
      const a = f32((values[x0 + j] as number) - min);
      const b = f32((values[x0 + 16 + j] as number) - min);
      const q0 = truncToInt(mulAdd(a, id, 0.5, fma)) & 0xff;
      const q1 = truncToInt(mulAdd(b, id, 0.5, fma)) & 0xff;
      out[o + 8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + 16);
    }
    writeU32(out, o + 4, qh);
  }
  return out;
}

/** `dequantize_row_q5_1`: y = q·d + m with the Q5_0 bit handling. */
export function dequantizeQ5_1(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK5_1;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_1_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const m = t[(bytes[o + 2] as number) | ((bytes[o + 3] as number) << 8)] as number;
    const qh = readU32(bytes, o + 4);
    const y = i * QK5_1;
    for (let j = 0; j < 16; j++) {
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      const q = bytes[o + 8 + j] as number;
      out[y + j] = ((q & 0x0f) | xh0) * d + m;
      out[y + j + 16] = ((q >>> 4) | xh1) * d + m;
    }
  }
  return out;
}
