import { fp16Table, fp32ToFp16Bits } from './f16.js';
import { f32, fmaF32, truncToInt } from './f32.js';

/** Elements per Q4_0 block. */
export const QK4_0 = 32;
/** `f16 d; u8 qs[16]`. */
export const Q4_0_BYTES = 18;

/** Options for the "round by truncation" legacy quantizers (Q4_0, Q4_1, Q5_0, Q5_1). */
export interface LegacyQuantOptions {
  /**
   * Compute `x·id + 0.5` (or `+ 8.5`, `+ 16.5`) with one rounding, as an FMA, instead of rounding
   * the product to f32 first (gguf-py notes the result "depends on FMA"). A compiler that contracts
   * the C expression produces the FMA variant. Default: DEFAULT_FMA.
   */
  fma?: boolean;
}

/**
 * Whether the legacy quantizers contract `x·id + c` into an FMA by default: no. The llama.cpp golden
 * files (test/fixtures/llamacpp) match only the uncontracted form: one Q5_0 block of
 * tiny-llama `output.weight` has x·id = 14.499999 where f32(14.499999 + 16.5) = 31 but the FMA gives
 * 30.999998 → 30, and llama-quantize wrote 31. Q4_0/Q4_1/Q5_1 on that file agree either way.
 */
export const DEFAULT_FMA = false;

/** `(x·id) + c` in f32, with or without contraction. */
export function mulAdd(x: number, id: number, c: number, fma: boolean): number {
  return fma ? fmaF32(x, id, c) : f32(f32(x * id) + c);
}

/**
 * `quantize_row_q4_0_ref`, bit for bit: max = the signed value of largest |x| (first one wins),
 * d = max/−8, id = d ? 1/d : 0, q = min(15, (int8)(x·id + 8.5)) (truncation), fp16(d) stored.
 * Nibbles: low = elements 0–15, high = elements 16–31.
 */
export function quantizeQ4_0(values: Float32Array, options: LegacyQuantOptions = {}): Uint8Array {
  const fma = options.fma ?? DEFAULT_FMA;
  if (values.length % QK4_0 !== 0) {
    throw new Error(`Q4_0 needs a multiple of ${QK4_0} values, got ${values.length}`);
  }
  const nb = values.length / QK4_0;
  const out = new Uint8Array(nb * Q4_0_BYTES);
  for (let i = 0; i < nb; i++) {
    const x0 = i * QK4_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = values[x0 + j] as number;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -8);
    const id = d !== 0 ? f32(1 / d) : 0;
    const o = i * Q4_0_BYTES;
    const h = fp32ToFp16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
    for (let j = 0; j < QK4_0 / 2; j++) {
      const q0 = Math.min(15, int8(truncToInt(mulAdd(values[x0 + j] as number, id, 8.5, fma))));
      const q1 = Math.min(15, int8(truncToInt(mulAdd(values[x0 + 16 + j] as number, id, 8.5, fma))));
      out[o + 2 + j] = (q0 & 0xff) | ((q1 << 4) & 0xff);
    }
  }
  return out;
}

/** The C `(int8_t)` of an int (wraps to −128..127). */
export function int8(v: number): number {
  return (v << 24) >> 24;
}

/** `dequantize_row_q4_0`: y[j] = (lo(qs[j]) − 8)·d, y[j+16] = (hi(qs[j]) − 8)·d. */
export function dequantizeQ4_0(bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  const t = fp16Table();
  const out = new Float32Array(count);
  const nb = count / QK4_0;
  for (let i = 0; i < nb; i++) {
    const o = i * Q4_0_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const y = i * QK4_0;
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j] as number;
      out[y + j] = ((q & 0x0f) - 8) * d;
      out[y + j + 16] = ((q >>> 4) - 8) * d;
    }
  }
  return out;
}

/** Σ dequant(row)[i]·x[i] from the blocks; (q − 8)·d is exact in f32, so only f64 summation order differs. */
export function dotQ4_0(bytes: Uint8Array, byteOffset: number, x: Float32Array, n: number): number {
  const t = fp16Table();
  const nb = n / QK4_0;
  let sum = 0;
  for (let i = 0; i < nb; i++) {
    const o = byteOffset + i * Q4_0_BYTES;
    const d = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
    const xb = i * QK4_0;
    let s = 0;
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j] as number;
      s += ((q & 0x0f) - 8) * (x[xb + j] as number) + ((q >>> 4) - 8) * (x[xb + j + 16] as number);
    }
    sum += d * s;
  }
  return sum;
}
