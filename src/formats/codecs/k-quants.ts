/**
 * K-quants (QK_K = 256 super-blocks): Q4_K and Q6_K reference quantizers, bit for bit as ggml's
 * `quantize_row_q4_K_ref` / `quantize_row_q6_K_ref` (ggml-quants.c), and their dequantizers.
 *
 * The C code is all single-precision: every float operation below is one `f32(…)` (Math.fround), in
 * the C evaluation order (left to right, `a*b*c` = `(a*b)*c`, an int operand converted to float). The
 * golden files in test/fixtures/llamacpp are reproduced byte for byte with no FMA contraction.
 * Source: llama.cpp as shipped in node-llama-cpp 3.21.1 (`llama/gitRelease.bundle`,
 * ggml/src/ggml-quants.c lines 615–880, 1457–1530, 1869–1935).
 */
import { fp16Table, fp32ToFp16Bits } from './f16.js';
import { f32ToBits } from './f32.js';

// Module-local on purpose: under vitest's module runner an imported `f32` is read through a getter on
// every call, which made these loops 5× slower.
const f32 = Math.fround;

/** Elements per K-quant super-block (QK_K). */
export const QK_K = 256;
/** `f16 d; f16 dmin; u8 scales[12]; u8 qs[128]`. */
export const Q4_K_BYTES = 144;
/** `u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d`. */
export const Q6_K_BYTES = 210;

/** `GROUP_MAX_EPS` (1e-15f): a group whose largest |x| is below it quantizes to all zeros. */
const GROUP_MAX_EPS = f32(1e-15);
/** 1.5·2^23 (`12582912.f`): adding it to a float of magnitude ≤ 2^22 leaves the rounded integer in the low mantissa bits. */
const MAGIC_ROUND = 12582912;
/** `nearest_int`'s asserted domain, |fval| ≤ 4194303 (2^22 − 1). */
const NEAREST_INT_DOMAIN = 4194303;

/**
 * ggml `nearest_int(float)`: `(bits(fval + 12582912.f) & 0x007fffff) − 0x00400000`, i.e. round half to
 * even inside the asserted domain. Release builds drop the assert, so outside it (and for Inf/NaN) the
 * same bit arithmetic is reproduced, garbage included.
 */
export function nearestInt(fval: number): number {
  if (Math.abs(fval) <= NEAREST_INT_DOMAIN) return f32(fval + MAGIC_ROUND) - MAGIC_ROUND;
  return (f32ToBits(f32(fval + MAGIC_ROUND)) & 0x007fffff) - 0x00400000;
}

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

/**
 * ggml `make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad=false)`:
 * an asymmetric (scale, min) fit of `n` values at `x[x0…]` to levels 0…nmax, minimising the weighted
 * squared error over nstep+1 candidate scales. Writes the levels into `L[l0…]`; returns
 * `[scale, theMin]` where theMin = −min ≥ 0.
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  x0: number,
  weights: Float32Array,
  L: Uint8Array,
  l0: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): [number, number] {
  let min = x[x0] as number;
  let max = min;
  let sumW = weights[0] as number;
  let sumX = f32(sumW * min);
  for (let i = 1; i < n; i++) {
    const xi = x[x0 + i] as number;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i] as number;
    sumW = f32(sumW + w);
    sumX = f32(sumX + f32(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, l0, l0 + n);
    return [0, f32(-min)];
  }
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i] as number;
    const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(xi - min)))));
    L[l0 + i] = l;
    const diff = f32(f32(f32(scale * l) + min) - xi);
    bestError = f32(bestError + f32((weights[i] as number) * f32(diff * diff)));
  }
  if (nstep < 1) return [scale, f32(-min)];
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best fit so far, not the data minimum: C re-reads it here and below after each improvement.
    iscale = f32(f32(f32(rmin + f32(rdelta * is)) + nmax) / f32(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXl = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[x0 + i] as number;
      const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(xi - min)))));
      Laux[i] = l;
      const wl = f32((weights[i] as number) * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXl = f32(sumXl + f32(wl * xi));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (D > 0) {
      let thisScale = f32(f32(f32(sumW * sumXl) - f32(sumX * sumL)) / D);
      let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXl)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f32(sumXl / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f32(f32(f32(thisScale * (Laux[i] as number)) + thisMin) - (x[x0 + i] as number));
        curError = f32(curError + f32((weights[i] as number) * f32(diff * diff)));
      }
      if (curError < bestError) {
        L.set(Laux.subarray(0, n), l0);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, f32(-min)];
}

/**
 * `quantize_row_q4_K_ref`: per 32-element sub-block a weighted (scale, min) fit (weights av_x + |x|,
 * av_x = rms of the sub-block; rmin −1, rdelta 0.1, 20 steps); the 8 scales and 8 mins are then
 * quantized to 6 bits against d = max_scale/63 and dmin = max_min/63 (stored fp16), and the 4-bit
 * levels recomputed from the stored d·sc and dmin·m.
 */
export function quantizeQ4_K(values: Float32Array): Uint8Array {
  if (values.length % QK_K !== 0) throw new Error(`Q4_K needs a multiple of ${QK_K} values, got ${values.length}`);
  const t = fp16Table();
  const nb = values.length / QK_K;
  const out = new Uint8Array(nb * Q4_K_BYTES);
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(QK_K / 32);
  const scales = new Float32Array(QK_K / 32);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K;
    const o = i * Q4_K_BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < QK_K / 32; j++) {
      const x0 = xb + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) {
        const v = values[x0 + l] as number;
        sumX2 = f32(sumX2 + f32(v * v));
      }
      const avX = f32(Math.sqrt(f32(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f32(avX + Math.abs(values[x0 + l] as number));
      const [scale, min] = makeQkx2Quants(32, 15, values, x0, weights, L, 32 * j, Laux, -1, f32(0.1), 20);
      scales[j] = scale;
      mins[j] = min;
      if (scale > maxScale) maxScale = scale;
      if (min > maxMin) maxMin = min;
    }
    const invScale = maxScale > 0 ? f32(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f32(63 / maxMin) : 0;
    const s = o + 4;
    for (let j = 0; j < QK_K / 32; j++) {
      // `uint8_t ls = nearest_int(…)` keeps the low byte before MIN(63, ·).
      const ls = Math.min(63, nearestInt(f32(invScale * (scales[j] as number))) & 0xff);
      const lm = Math.min(63, nearestInt(f32(invMin * (mins[j] as number))) & 0xff);
      if (j < 4) {
        out[s + j] = ls;
        out[s + j + 4] = lm;
      } else {
        out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[s + j - 4] = (out[s + j - 4] as number) | ((ls >> 4) << 6);
        out[s + j] = (out[s + j] as number) | ((lm >> 4) << 6);
      }
    }
    const hd = fp32ToFp16Bits(f32(maxScale / 63));
    const hm = fp32ToFp16Bits(f32(maxMin / 63));
    out[o] = hd & 0xff;
    out[o + 1] = hd >>> 8;
    out[o + 2] = hm & 0xff;
    out[o + 3] = hm >>> 8;
    const dAll = t[hd] as number;
    const dminAll = t[hm] as number;
    for (let j = 0; j < QK_K / 32; j++) {
      const [sc, m] = scaleMinK4(out, s, j);
      const d = f32(dAll * sc);
      if (d === 0) continue; // `if (!d) continue;` keeps make_qkx2_quants' levels (NaN d does not skip)
      const dm = f32(dminAll * m);
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(f32(f32((values[xb + 32 * j + ii] as number) + dm) / d));
        L[32 * j + ii] = Math.max(0, Math.min(15, l));
      }
    }
    let q = o + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[q + l] = ((L[j + l] as number) | ((L[j + l + 32] as number) << 4)) & 0xff;
      q += 32;
    }
  }
  return out;
}

/**
 * ggml `make_qx_quants(n, nmax, x, L, rmse_type=1, qw=NULL)`: a symmetric scale for `n` values at
 * `x[x0…]`, levels −nmax…nmax−1 stored as L = l + nmax, searching 18 candidate scales around
 * −nmax/max with weights x². Returns the scale.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, x0: number, L: Int8Array, l0: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i] as number;
    const ax = Math.abs(xi);
    if (ax > amax) {
      amax = ax;
      max = xi;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, l0, l0 + n);
    return 0;
  }
  const clamp = (l: number): number => Math.max(-nmax, Math.min(nmax - 1, l));
  let iscale = f32(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i] as number;
    const l = clamp(nearestInt(f32(iscale * xi)));
    L[l0 + i] = l + nmax;
    const w = f32(xi * xi);
    sumlx = f32(sumlx + f32(f32(w * xi) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  let scale = suml2 !== 0 ? f32(sumlx / suml2) : 0;
  let best = f32(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f32(-f32(nmax + f32(f32(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[x0 + i] as number;
      const l = clamp(nearestInt(f32(iscale * xi)));
      const w = f32(xi * xi);
      sumlx = f32(sumlx + f32(f32(w * xi) * l));
      suml2 = f32(suml2 + f32(f32(w * l) * l));
    }
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      for (let i = 0; i < n; i++) L[l0 + i] = nmax + clamp(nearestInt(f32(iscale * (x[x0 + i] as number))));
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

/**
 * `quantize_row_q6_K_ref`: per 16-element sub-block a symmetric scale (make_qx_quants, nmax 32); the
 * 16 scales are quantized to int8 against d = max_scale/−128 (the signed scale of largest |·|, stored
 * fp16) and the 6-bit levels recomputed from the stored d·sc.
 */
export function quantizeQ6_K(values: Float32Array): Uint8Array {
  if (values.length % QK_K !== 0) throw new Error(`Q6_K needs a multiple of ${QK_K} values, got ${values.length}`);
  const t = fp16Table();
  const nb = values.length / QK_K;
  const out = new Uint8Array(nb * Q6_K_BYTES);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(QK_K / 16);
  for (let i = 0; i < nb; i++) {
    const xb = i * QK_K;
    const o = i * Q6_K_BYTES;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < QK_K / 16; ib++) {
      const scale = makeQxQuants(16, 32, values, xb + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      const abs = Math.abs(scale);
      if (abs > maxAbsScale) {
        maxAbsScale = abs;
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) continue; // the block stays all zeros (d = fp16(0) = 0)
    const iscale = f32(-128 / maxScale);
    const hd = fp32ToFp16Bits(f32(1 / iscale));
    out[o + 208] = hd & 0xff;
    out[o + 209] = hd >>> 8;
    const dAll = t[hd] as number;
    for (let ib = 0; ib < QK_K / 16; ib++) {
      // `MIN(127, nearest_int(…))` stored to int8_t: the low byte.
      out[o + 192 + ib] = Math.min(127, nearestInt(f32(iscale * (scales[ib] as number)))) & 0xff;
    }
    for (let j = 0; j < QK_K / 16; j++) {
      const d = f32(dAll * i8At(out, o + 192 + j));
      if (d === 0) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f32((values[xb + 16 * j + ii] as number) / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    let ql = o;
    let qh = o + 128;
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        const a = L[j + l] as number;
        const b = L[j + l + 32] as number;
        const c = L[j + l + 64] as number;
        const e = L[j + l + 96] as number;
        out[ql + l] = ((a & 0xf) | ((c & 0xf) << 4)) & 0xff;
        out[ql + l + 32] = ((b & 0xf) | ((e & 0xf) << 4)) & 0xff;
        out[qh + l] = ((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)) & 0xff;
      }
      ql += 64;
      qh += 32;
    }
  }
  return out;
}
