import { fp16Table } from './f16.js';
import { f32 } from './f32.js';

/** Elements per K-quant super-block (QK_K). */
export const QK_K = 256;
/** `f16 d; f16 dmin; u8 scales[12]; u8 qs[128]`. */
export const Q4_K_BYTES = 144;
/** `u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d`. */
export const Q6_K_BYTES = 210;

function i8At(bytes: Uint8Array, i: number): number {
  return ((bytes[i] as number) << 24) >> 24;
}

/** ggml `get_scale_min_k4`: the j-th 6-bit (scale, min) pair of a Q4_K/Q5_K block. */
function scaleMinK4(bytes: Uint8Array, s: number, j: number): [number, number] {
  const b = (k: number): number => bytes[s + k] as number;
  if (j < 4) return [b(j) & 63, b(j + 4) & 63];
  return [(b(j + 4) & 0x0f) | ((b(j - 4) >>> 6) << 4), (b(j + 4) >>> 4) | ((b(j) >>> 6) << 4)];
}

/** `dequantize_row_q4_K`: per 64-element chunk, y = d·sc·q − dmin·m with 4-bit q. */
export function dequantizeQ4_K(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_K_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const dmin = t[(bytes[o + 2] as number) | ((bytes[o + 3] as number) << 8)] as number;
    const scales = o + 4;
    let q = o + 16;
    let y = i * QK_K;
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(bytes, scales, 2 * c);
      const [sc2, m2] = scaleMinK4(bytes, scales, 2 * c + 1);
      const d1 = f32(d * sc1);
      const mm1 = f32(dmin * m1);
      const d2 = f32(d * sc2);
      const mm2 = f32(dmin * m2);
      for (let l = 0; l < 32; l++) out[y + l] = d1 * ((bytes[q + l] as number) & 0x0f) - mm1;
      for (let l = 0; l < 32; l++) out[y + 32 + l] = d2 * ((bytes[q + l] as number) >>> 4) - mm2;
      q += 32;
      y += 64;
    }
  }
  return out;
}

/** `dequantize_row_q6_K`: two halves of 128; 6-bit q from ql nibbles + 2 qh bits, minus 32, × d·sc. */
export function dequantizeQ6_K(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK_K;
  for (let i = 0; i < nb; i++) {
    const o = i * Q6_K_BYTES;
    const d = t[(bytes[o + 208] as number) | ((bytes[o + 209] as number) << 8)] as number;
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    let y = i * QK_K;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const a = bytes[ql + l] as number;
        const b = bytes[ql + l + 32] as number;
        const h = bytes[qh + l] as number;
        const q1 = ((a & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((b & 0x0f) | (((h >>> 2) & 3) << 4)) - 32;
        const q3 = ((a >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
        const q4 = ((b >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
        out[y + l] = f32(d * i8At(bytes, sc + is)) * q1;
        out[y + l + 32] = f32(d * i8At(bytes, sc + is + 2)) * q2;
        out[y + l + 64] = f32(d * i8At(bytes, sc + is + 4)) * q3;
        out[y + l + 96] = f32(d * i8At(bytes, sc + is + 6)) * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
  return out;
}
