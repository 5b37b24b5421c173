import { fp16Table, fp32ToFp16Bits } from '../formats/codecs/f16.js';
import { nearestInt } from '../formats/codecs/k-quants.js';
import type { DType } from '../formats/types.js';

/**
 * llama.cpp's CPU matmul does not multiply quantized weights by f32 activations: it first quantizes the
 * activation row to the weight type's `vec_dot_type` (Q8_0 for Q8_0, Q4_0 and Q5_0 weights; Q8_1 for Q4_1
 * and Q5_1; Q8_K for the K-quants) and takes an integer dot per block. The bundled engine does the same, so
 * it computes what llama.cpp computes.
 */
export interface Q8Activations {
  /** fp16-rounded scale per 32-block, as stored in `block_q8_0.d` / `block_q8_1.d`. */
  d: Float32Array;
  q: Int8Array;
  /** `block_q8_1.s` per 32-block: fp16(d·Σq) with the unrounded f32 d (Q4_1, Q5_1 use it for their min term). */
  s: Float32Array;
}

/**
 * `block_q8_K` over the row (256-element super-blocks): f32 d, codes, and `bsums` (Σq per 16 elements).
 * Q4_K's min term needs Σq per 32-element sub-block: bsums[2j] + bsums[2j+1].
 */
export interface Q8KActivations {
  d: Float32Array;
  q: Int8Array;
  bsums: Int16Array;
}

/** Weight types whose activations llama.cpp quantizes to Q8_0 (block_q8_0) before the dot product. */
export const Q8_ACTIVATION_TYPES: ReadonlySet<DType> = new Set<DType>(['Q8_0', 'Q4_0', 'Q5_0']);
/** Weight types whose activations llama.cpp quantizes to Q8_1 (the Q8_0 codes plus the block sum s). */
export const Q8_1_ACTIVATION_TYPES: ReadonlySet<DType> = new Set<DType>(['Q4_1', 'Q5_1']);
/** Weight types whose activations llama.cpp quantizes to Q8_K (256-element super-blocks, f32 scale). */
export const Q8K_ACTIVATION_TYPES: ReadonlySet<DType> = new Set<DType>(['Q4_K', 'Q6_K']);

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
}

/**
 * ggml-cpu `quantize_row_q8_0` / `quantize_row_q8_1`, x86 SIMD path: d = max|x|/127, id = 127/max|x| (not
 * 1/d, as the reference function has it), q = round-half-even(x·id) (`_mm256_round_ps`, nearest); Q8_1's
 * s = fp16(d·Σq) with d before its fp16 rounding. Both types share d and q, so one pass serves both.
 */
export function quantizeActivationsQ8(x: Float32Array): Q8Activations {
  const nb = x.length / 32;
  const d = new Float32Array(nb);
  const s = new Float32Array(nb);
  const q = new Int8Array(x.length);
  const t = fp16Table();
  for (let b = 0; b < nb; b++) {
    let max = 0;
    for (let j = 0; j < 32; j++) max = Math.max(max, Math.abs(x[b * 32 + j] as number));
    const df = Math.fround(max / 127);
    d[b] = t[fp32ToFp16Bits(df)] as number;
    const id = max !== 0 ? Math.fround(127 / max) : 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const v = roundHalfEven(Math.fround((x[b * 32 + j] as number) * id));
      q[b * 32 + j] = v;
      sum += v;
    }
    s[b] = t[fp32ToFp16Bits(Math.fround(df * sum))] as number;
  }
  return { d, q, s };
}

/**
 * ggml `quantize_row_q8_K_ref` (the x86 build calls the reference): per 256-block, `max` is the signed value
 * of largest |x| (the first one on ties), iscale = −127/max in f32, q = min(127, nearest_int(iscale·x)),
 * d = 1/iscale; an all-zero block has d = 0. bsums[j] = Σ q over elements 16j…16j+15.
 */
export function quantizeActivationsQ8K(x: Float32Array): Q8KActivations {
  const nb = x.length / 256;
  const d = new Float32Array(nb);
  const q = new Int8Array(x.length);
  const bsums = new Int16Array(x.length / 16);
  for (let b = 0; b < nb; b++) {
    const o = b * 256;
    let max = 0;
    let amax = 0;
    for (let j = 0; j < 256; j++) {
      const v = x[o + j] as number;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    if (amax === 0) continue;
    const iscale = Math.fround(-127 / max);
    for (let j = 0; j < 256; j++) q[o + j] = Math.min(127, nearestInt(Math.fround(iscale * (x[o + j] as number))));
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let j = 0; j < 16; j++) sum += q[o + g * 16 + j] as number;
      bsums[b * 16 + g] = sum;
    }
    d[b] = Math.fround(1 / iscale);
  }
  return { d, q, bsums };
}

function i8(v: number): number {
  return (v << 24) >> 24;
}

function u32At(bytes: Uint8Array, o: number): number {
  return (
    ((bytes[o] as number) | ((bytes[o + 1] as number) << 8) | ((bytes[o + 2] as number) << 16) | ((bytes[o + 3] as number) << 24)) >>> 0
  );
}

/**
 * Σ over blocks of f32(fp16(d_w)·d_x)·Σ q_w·q_x (+ fp16(m_w)·s_x for Q4_1/Q5_1) for one weight row of `n`
 * elements at `bytes[byteOffset]`, as ggml's `ggml_vec_dot_<type>_q8_0` / `_q8_1` compute it.
 */
export function dotQ8Activations(dtype: DType, bytes: Uint8Array, byteOffset: number, a: Q8Activations, n: number): number {
  const t = fp16Table();
  const nb = n / 32;
  const h = (o: number): number => t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    const aq = b * 32;
    let s = 0;
    let o: number;
    switch (dtype) {
      case 'Q8_0':
        o = byteOffset + b * 34;
        for (let j = 0; j < 32; j++) s += i8(bytes[o + 2 + j] as number) * (a.q[aq + j] as number);
        break;
      case 'Q4_0':
        o = byteOffset + b * 18;
        for (let j = 0; j < 16; j++) {
          const v = bytes[o + 2 + j] as number;
          s += ((v & 0x0f) - 8) * (a.q[aq + j] as number) + ((v >>> 4) - 8) * (a.q[aq + j + 16] as number);
        }
        break;
      case 'Q5_0':
      case 'Q5_1': {
        // Q5_0: fp16 d, u32 qh, 16 nibble bytes, q − 16; Q5_1: fp16 d, fp16 m, u32 qh, 16 nibble bytes, unsigned q.
        const isQ51 = dtype === 'Q5_1';
        o = byteOffset + b * (isQ51 ? 24 : 22);
        const qh = u32At(bytes, o + (isQ51 ? 4 : 2));
        const qs = o + (isQ51 ? 8 : 6);
        const bias = isQ51 ? 0 : 16;
        for (let j = 0; j < 16; j++) {
          const v = bytes[qs + j] as number;
          const lo = ((v & 0x0f) | (((qh >>> j) & 1) << 4)) - bias;
          const hi = ((v >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - bias;
          s += lo * (a.q[aq + j] as number) + hi * (a.q[aq + j + 16] as number);
        }
        break;
      }
      case 'Q4_1':
        o = byteOffset + b * 20;
        for (let j = 0; j < 16; j++) {
          const v = bytes[o + 4 + j] as number;
          s += (v & 0x0f) * (a.q[aq + j] as number) + (v >>> 4) * (a.q[aq + j + 16] as number);
        }
        break;
      default:
        throw new Error(`no Q8 activation dot for ${dtype}`);
    }
    sum += Math.fround(h(o) * (a.d[b] as number)) * s;
    if (dtype === 'Q4_1' || dtype === 'Q5_1') sum += Math.fround(h(o + 2) * (a.s[b] as number));
  }
  return sum;
}

/**
 * Σ over 256-blocks of f32(fp16(d_w)·d_x)·Σ_sub sc·Σ q_w·q_x − f32(fp16(dmin_w)·d_x)·Σ_sub m·Σ q_x, the integer
 * sums exact, as ggml's `ggml_vec_dot_q4_K_q8_K` / `ggml_vec_dot_q6_K_q8_K` compute it.
 */
export function dotQ8KActivations(dtype: DType, bytes: Uint8Array, byteOffset: number, a: Q8KActivations, n: number): number {
  const t = fp16Table();
  const h = (o: number): number => t[(bytes[o] as number) | ((bytes[o + 1] as number) << 8)] as number;
  const nb = n / 256;
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    const aq = b * 256;
    const dx = a.d[b] as number;
    let isum = 0;
    if (dtype === 'Q4_K') {
      // f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs (ggml get_scale_min_k4), 128 nibble bytes:
      // chunk c's 32 bytes hold elements 64c…64c+31 (low nibbles, pair 2c) and 64c+32…64c+63 (high, pair 2c+1).
      const o = byteOffset + b * 144;
      const sc = (k: number): number => bytes[o + 4 + k] as number;
      let msum = 0;
      for (let j = 0; j < 8; j++) {
        const scale = j < 4 ? sc(j) & 63 : (sc(j + 4) & 0x0f) | ((sc(j - 4) >>> 6) << 4);
        const min = j < 4 ? sc(j + 4) & 63 : (sc(j + 4) >>> 4) | ((sc(j) >>> 6) << 4);
        const qs = o + 16 + (j >> 1) * 32;
        const shift = (j & 1) * 4;
        let s = 0;
        for (let l = 0; l < 32; l++) s += (((bytes[qs + l] as number) >>> shift) & 0x0f) * (a.q[aq + j * 32 + l] as number);
        isum += scale * s;
        msum += min * ((a.bsums[b * 16 + 2 * j] as number) + (a.bsums[b * 16 + 2 * j + 1] as number));
      }
      sum += Math.fround(h(o) * dx) * isum - Math.fround(h(o + 2) * dx) * msum;
    } else if (dtype === 'Q6_K') {
      // ql[128], qh[64], i8 scales[16], f16 d; per 128-half: q = (ql nibble | 2 qh bits << 4) − 32 at l, l+32,
      // l+64, l+96 (l < 32) with scales[is], [is+2], [is+4], [is+6], is = l/16.
      const o = byteOffset + b * 210;
      for (let half = 0; half < 2; half++) {
        const ql = o + half * 64;
        const qh = o + 128 + half * 32;
        const sc = o + 192 + half * 8;
        const ab = aq + half * 128;
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const a0 = bytes[ql + l] as number;
          const a1 = bytes[ql + l + 32] as number;
          const hb = bytes[qh + l] as number;
          const q1 = ((a0 & 0x0f) | ((hb & 3) << 4)) - 32;
          const q2 = ((a1 & 0x0f) | (((hb >>> 2) & 3) << 4)) - 32;
          const q3 = ((a0 >>> 4) | (((hb >>> 4) & 3) << 4)) - 32;
          const q4 = ((a1 >>> 4) | ((hb >>> 6) << 4)) - 32;
          isum += i8(bytes[sc + is] as number) * q1 * (a.q[ab + l] as number);
          isum += i8(bytes[sc + is + 2] as number) * q2 * (a.q[ab + l + 32] as number);
          isum += i8(bytes[sc + is + 4] as number) * q3 * (a.q[ab + l + 64] as number);
          isum += i8(bytes[sc + is + 6] as number) * q4 * (a.q[ab + l + 96] as number);
        }
      }
      sum += Math.fround(h(o + 208) * dx) * isum;
    } else {
      throw new Error(`no Q8_K activation dot for ${dtype}`);
    }
  }
  return sum;
}
