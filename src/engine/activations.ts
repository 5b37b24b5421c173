import { fp16Table, fp32ToFp16Bits } from '../formats/codecs/f16.js';
import type { DType } from '../formats/types.js';

/**
 * llama.cpp's CPU matmul does not multiply quantized weights by f32 activations: it first quantizes the
 * activation row to the weight type's `vec_dot_type` (Q8_0 for Q8_0 and Q4_0 weights) and takes an
 * integer dot per block. The bundled engine does the same, so it computes what llama.cpp computes.
 */
export interface Q8Activations {
  /** fp16-rounded scale per 32-block, as stored in `block_q8_0.d`. */
  d: Float32Array;
  q: Int8Array;
}

/** Weight types whose activations llama.cpp quantizes to Q8_0 before the dot product. */
export const Q8_ACTIVATION_TYPES: ReadonlySet<DType> = new Set<DType>(['Q8_0', 'Q4_0']);

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
}

/**
 * ggml-cpu `quantize_row_q8_0`, x86 SIMD path: d = max|x|/127, id = 127/max|x| (not 1/d, as the
 * reference function has it), q = round-half-even(x·id) (`_mm256_round_ps`, nearest).
 */
export function quantizeActivationsQ8(x: Float32Array): Q8Activations {
  const nb = x.length / 32;
  const d = new Float32Array(nb);
  const q = new Int8Array(x.length);
  const t = fp16Table();
  for (let b = 0; b < nb; b++) {
    let max = 0;
    for (let j = 0; j < 32; j++) max = Math.max(max, Math.abs(x[b * 32 + j] as number));
    d[b] = t[fp32ToFp16Bits(Math.fround(max / 127))] as number;
    const id = max !== 0 ? Math.fround(127 / max) : 0;
    for (let j = 0; j < 32; j++) q[b * 32 + j] = roundHalfEven(Math.fround((x[b * 32 + j] as number) * id));
  }
  return { d, q };
}

/** Σ over blocks of fp16(d_w)·d_x·Σ q_w·q_x for one weight row of `n` elements at `bytes[byteOffset]`. */
export function dotQ8Activations(dtype: DType, bytes: Uint8Array, byteOffset: number, a: Q8Activations, n: number): number {
  const t = fp16Table();
  const nb = n / 32;
  let sum = 0;
  if (dtype === 'Q8_0') {
    for (let b = 0; b < nb; b++) {
      const o = byteOffset + b * 34;
      const dw = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
      let s = 0;
      for (let j = 0; j < 32; j++) s += (((bytes[o + 2 + j] as number) << 24) >> 24) * (a.q[b * 32 + j] as number);
      sum += Math.fround(dw * (a.d[b] as number)) * s;
    }
    return sum;
  }
  if (dtype === 'Q4_0') {
    for (let b = 0; b < nb; b++) {
      const o = byteOffset + b * 18;
      const dw = t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
      let s = 0;
      for (let j = 0; j < 16; j++) {
        const v = bytes[o + 2 + j] as number;
        s += ((v & 0x0f) - 8) * (a.q[b * 32 + j] as number) + ((v >>> 4) - 8) * (a.q[b * 32 + j + 16] as number);
      }
      sum += Math.fround(dw * (a.d[b] as number)) * s;
    }
    return sum;
  }
  throw new Error(`no Q8 activation dot for ${dtype}`);
}
