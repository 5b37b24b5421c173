import { fp16Table, fp32ToFp16Bits } from './f16.js';
import { f32, truncToInt } from './f32.js';
import { DEFAULT_FMA, int8, mulAdd, type LegacyQuantOptions } from './q4_0.js';

/** Elements per Q5_0 block. */
export const QK5_0 = 32;
/** `f16 d; u8 qh[4]; u8 qs[16]`. */
export const Q5_0_BYTES = 22;

/**
 * `quantize_row_q5_0_ref`: max = signed value of largest |x|, d = max/−16,
 * q = min(31, (int8)(x·id + 16.5)); bit 4 of element j goes to bit j of the LE u32 qh.
 */
export function quantizeQ5_0(values: Float32Array, options: LegacyQuantOptions = {}): Uint8Array {
  const fma = options.fma ?? DEFAULT_FMA;
  if (values.length % QK5_0 !== 0) {
    throw new Error(`Q5_0 needs a multiple of ${QK5_0} values, got ${values.length}`);
  }
  const nb = values.length / QK5_0;
  const out = new Uint8Array(nb * Q5_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK5_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK5_0; j++) {
      const v = values[x0 + j] as number;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -16);
    const id = d !== 0 ? f32(1 / d) : 0;
    const o = i * Q5_0_BYTES;
    const h = fp32ToFp16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    let qh = 0;
    for (let j = 0; j < QK5_0 / 2; j++) {
      const q0 = Math.min(31, int8(truncToInt(mulAdd(values[x0 + j] as number, id, 16.5, fma)))) & 0xff;
      const q1 = Math.min(31, int8(truncToInt(mulAdd(values[x0 + 16 + j] as number, id, 16.5, fma)))) & 0xff;
      out[o + 6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + 16);
    }
    writeU32(out, o + 2, qh);
  }
  return out;
}

/** `dequantize_row_q5_0`: 5-bit q = nibble | (bit j of qh) << 4, y = (q − 16)·d. */
export function dequantizeQ5_0(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK5_0;
  for (let i = 0; i < nb; i++) {
    const o = i * Q5_0_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const qh = readU32(bytes, o + 2);
    const y = i * QK5_0;
    for (let j = 0; j < 16; j++) {
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      const q = bytes[o + 6 + j] as number;
      out[y + j] = (((q & 0x0f) | xh0) - 16) * d;
      out[y + j + 16] = (((q >>> 4) | xh1) - 16) * d;
    }
  }
  return out;
}

export function readU32(bytes: Uint8Array, o: number): number {
  return (
    ((bytes[o] as number) | ((bytes[o + 1] as number) << 8) | ((bytes[o + 2] as number) << 16) | ((bytes[o + 3] as number) << 24)) >>> 0
  );
}

export function writeU32(bytes: Uint8Array, o: number, v: number): void {
  bytes[o] = v & 0xff;
  bytes[o + 1] = (v >>> 8) & 0xff;
  bytes[o + 2] = (v >>> 16) & 0xff;
  bytes[o + 3] = (v >>> 24) & 0xff;
}
