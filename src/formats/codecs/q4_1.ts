import { fp16Table, fp32ToFp16Bits } from './f16.js';
import { f32, truncToInt } from './f32.js';
import { DEFAULT_FMA, int8, mulAdd, type LegacyQuantOptions } from './q4_0.js';

/** Elements per Q4_1 block. */
export const QK4_1 = 32;
/** `f16 d; f16 m; u8 qs[16]`. */
export const Q4_1_BYTES = 20;

/** Largest finite f32 (C `FLT_MAX`), the start value of ggml's min/max scans. */
export const FLT_MAX = f32(3.4028234663852886e38);

/** Block min and max as ggml's `v < min`/`v > max` scan finds them (NaN never wins a comparison). */
export function blockMinMax(values: Float32Array, start: number, n: number): [number, number] {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < n; j++) {
    const v = values[start + j] as number;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/**
 * `quantize_row_q4_1_ref`: d = (max − min)/15, m = min, q = min(15, (int8)((x − min)·id + 0.5)).
 */
export function quantizeQ4_1(values: Float32Array, options: LegacyQuantOptions = {}): Uint8Array {
  const fma = options.fma ?? DEFAULT_FMA;
  if (values.length % QK4_1 !== 0) {
    throw new Error(`Q4_1 needs a multiple of ${QK4_1} values, got ${values.length}`);
  }
  const nb = values.length / QK4_1;
  const out = new Uint8Array(nb * Q4_1_BYTES);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK4_1;
    const [min, max] = blockMinMax(values, x0, QK4_1);
    const d = f32(f32(max - min) / 15);
    const id = d !== 0 ? f32(1 / d) : 0;
    const o = i * Q4_1_BYTES;
    const hd = fp32ToFp16Bits(d);
    const hm = fp32ToFp16Bits(min);
    out[o] = hd & 0xff;
    out[o + 1] = hd >>> 8;
    out[o + 2] = hm & 0xff;
    out[o + 3] = hm >>> 8;
    for (let j = 0; j < QK4_1 / 2; j++) {
      const a = f32((values[x0 + j] as number) - min);
      const b = f32((values[x0 + 16 + j] as number) - min);
      const q0 = Math.min(15, int8(truncToInt(mulAdd(a, id, 0.5, fma))));
      const q1 = Math.min(15, int8(truncToInt(mulAdd(b, id, 0.5, fma))));
      out[o + 4 + j] = (q0 & 0xff) | ((q1 << 4) & 0xff);
    }
  }
  return out;
}

/** `dequantize_row_q4_1`: y = q·d + m, same nibble split as Q4_0. */
export function dequantizeQ4_1(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK4_1;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_1_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const m = t[(bytes[o + 2] as number) | ((bytes[o + 3] as number) << 8)] as number;
    const y = i * QK4_1;
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 4 + j] as number;
      out[y + j] = (q & 0x0f) * d + m;
      out[y + j + 16] = (q >>> 4) * d + m;
    }
  }
  return out;
}
