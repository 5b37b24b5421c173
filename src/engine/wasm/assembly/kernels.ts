// @ts-nocheck — AssemblyScript, not TypeScript: compiled by src/engine/wasm/build.mjs (asc --enable simd), never by tsc.
/**
 * The bundled engine's hot loops in WebAssembly SIMD: matrix-vector products that read each stored type's
 * blocks straight from (shared) linear memory, and row dequantizers.
 *
 * Every value a kernel forms is the value the TypeScript codecs (src/formats/codecs) decode, bit for bit
 * (q·d is exact in f32 for every type; the one rounding of `q·d + m` or `f32(d·sc)·q` is the one the codec
 * makes when it stores to a Float32Array); only the order of the f32 sums differs. Block-quantized weights
 * multiply activations quantized to their llama.cpp `vec_dot_type` (Q8_0 for Q8_0/Q4_0/Q5_0, Q8_1 for
 * Q4_1/Q5_1, Q8_K for Q4_K/Q6_K; `quant_q8` / `quant_q8k` below, codes widened to i16) with integer dots, as
 * llama.cpp's CPU matmul does; the f32 paths (dequantize, transposed product) serve the rest.
 *
 * Calling convention: pointers are byte offsets into memory; a matrix is `rows` stored rows of `stride`
 * bytes from `w`; `mv_*` writes out[r] for r in [r0, r1) so that threads can split the rows.
 * fp16 scalars (block scales) decode through a 65 536-entry f32 table the host places at `init(table)`.
 */

let fp16tab: usize = 0;

/** The first free byte after the module's static data (the host allocates from here). */
export function heapBase(): usize {
  return __heap_base;
}

/** Where the host put the fp16 → f32 table (65 536 × f32). */
export function init(table: usize): void {
  fp16tab = table;
}

@inline function h2f(p: usize): f32 {
  return load<f32>(fp16tab + ((<usize>load<u16>(p)) << 2));
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** acc + Σ_k (f32(q[k])·d + m)·x[k] over 16 signed bytes q (16 consecutive elements). */
@inline function dot16(q: v128, d: v128, m: v128, x: usize, acc: v128): v128 {
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  const w0 = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d), m);
  const w1 = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), m);
  const w2 = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), m);
  const w3 = f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), m);
  acc = f32x4.add(acc, f32x4.mul(w0, v128.load(x)));
  acc = f32x4.add(acc, f32x4.mul(w1, v128.load(x, 16)));
  acc = f32x4.add(acc, f32x4.mul(w2, v128.load(x, 32)));
  return f32x4.add(acc, f32x4.mul(w3, v128.load(x, 48)));
}

/** The f32 values of 16 signed bytes, f32(q)·d + m, stored at y. */
@inline function deq16(q: v128, d: v128, m: v128, y: usize): void {
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  v128.store(y, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d), m));
  v128.store(y, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), m), 16);
  v128.store(y, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), m), 32);
  v128.store(y, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), m), 48);
}

/** i32 lanes of Σ q·a over 16 signed bytes q and 16 i16 activations at a. */
@inline function idot16(q: v128, a: usize): v128 {
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), v128.load(a));
  return i32x4.add(lo, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), v128.load(a, 16)));
}

// ---------------------------------------------------------------- f32, f16, bf16

@inline function dotF32(w: usize, x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(w + o), v128.load(x + o)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(w + o, 16), v128.load(x + o, 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(w + o, 32), v128.load(x + o, 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(w + o, 48), v128.load(x + o, 48)));
  }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++) s += load<f32>(w + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
  return s;
}

export function mv_f32(w: usize, stride: i32, r0: i32, r1: i32, n: i32, x: usize, out: usize): void {
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotF32(w + <usize>r * stride, x, n));
}

/** Four fp16 values (u32 lanes holding the bits) → f32, exactly: the 2^112 rescale covers subnormals. */
@inline function f16x4(h: v128): v128 {
  const em = v128.and(h, i32x4.splat(0x7fff));
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const shifted = i32x4.shl(em, 13);
  const finite = f32x4.mul(shifted, f32x4.splat(reinterpret<f32>(0x77800000)));
  const special = v128.or(shifted, i32x4.splat(0x7f800000));
  const isSpecial = i32x4.ge_s(em, i32x4.splat(0x7c00));
  return v128.or(v128.bitselect(special, finite, isSpecial), sign);
}

@inline function dotF16(w: usize, x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(w + (<usize>i << 1));
    const xo = x + (<usize>i << 2);
    a0 = f32x4.add(a0, f32x4.mul(f16x4(i32x4.extend_low_i16x8_u(h)), v128.load(xo)));
    a1 = f32x4.add(a1, f32x4.mul(f16x4(i32x4.extend_high_i16x8_u(h)), v128.load(xo, 16)));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; i < n; i++) s += h2f(w + (<usize>i << 1)) * load<f32>(x + (<usize>i << 2));
  return s;
}

export function mv_f16(w: usize, stride: i32, r0: i32, r1: i32, n: i32, x: usize, out: usize): void {
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotF16(w + <usize>r * stride, x, n));
}

@inline function dotBf16(w: usize, x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(w + (<usize>i << 1));
    const xo = x + (<usize>i << 2);
    a0 = f32x4.add(a0, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h), 16), v128.load(xo)));
    a1 = f32x4.add(a1, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), v128.load(xo, 16)));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; i < n; i++) s += reinterpret<f32>((<u32>load<u16>(w + (<usize>i << 1))) << 16) * load<f32>(x + (<usize>i << 2));
  return s;
}

export function mv_bf16(w: usize, stride: i32, r0: i32, r1: i32, n: i32, x: usize, out: usize): void {
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotBf16(w + <usize>r * stride, x, n));
}

// ---------------------------------------------------------------- integer block dots: shared pieces

/*
 * The integer kernels read activations in the permuted layout `ap`: codes widened to i16 and, within every
 * 16 elements, the 8 even-indexed ones first, then the 8 odd-indexed. Read as i16 lanes, 16 bytes of weight
 * codes then give their elements without byte widening: lane k of (v & 0xf) is the low nibble of byte 2k
 * (element 2k of its run), of (v >> 8 & 0xf) that of byte 2k+1, the high nibbles likewise; signed bytes widen
 * in place as (v << 8) >> 8 (even) and v >> 8 (odd). Each 16-element run costs two i32x4.dot_i16x8_s.
 */

/** i32 lanes of Σ e·a[0..8) + o·a[8..16) over one 16-element run of permuted activations at a. */
@inline function pdot(e: v128, o: v128, a: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(e, v128.load(a)), i32x4.dot_i16x8_s(o, v128.load(a, 16)));
}

/** Σ q·a over the 16 low nibbles of v (one 16-element run). */
@inline function nibLo(v: v128, a: usize): v128 {
  const m = i16x8.splat(0x0f);
  return pdot(v128.and(v, m), v128.and(i16x8.shr_u(v, 8), m), a);
}

/** Σ q·a over the 16 high nibbles of v. */
@inline function nibHi(v: v128, a: usize): v128 {
  return pdot(v128.and(i16x8.shr_u(v, 4), i16x8.splat(0x0f)), i16x8.shr_u(v, 12), a);
}

/** Σ q·a over 16 signed bytes. */
@inline function sbytes(v: v128, a: usize): v128 {
  return pdot(i16x8.shr_s(i16x8.shl(v, 8), 8), i16x8.shr_s(v, 8), a);
}

/** Σ q·a over a 32-element block of nibbles (16 bytes: low nibbles elements 0–15, high 16–31). */
@inline function blkQ4(v: v128, a: usize): v128 {
  return i32x4.add(nibLo(v, a), nibHi(v, a + 32));
}

/** Σ q·a over a 32-element block of signed bytes at p. */
@inline function blkQ8(p: usize, a: usize): v128 {
  return i32x4.add(sbytes(v128.load(p), a), sbytes(v128.load(p, 16), a + 32));
}

/** qh bit masks of the even / odd elements of a run, one per i16 lane (bit 2k / 2k+1 of 16 qh bits). */
const EVEN_BITS: v128 = i16x8(1, 4, 16, 64, 256, 1024, 4096, 16384);
const ODD_BITS: v128 = i16x8(2, 8, 32, 128, 512, 2048, 8192, -32768);

/** 0x10 in each i16 lane whose `bits` bit is set in h (16 qh bits splatted). */
@inline function hib(h: v128, bits: v128): v128 {
  return v128.andnot(i16x8.splat(0x10), i16x8.eq(v128.and(h, bits), i16x8.splat(0)));
}

/** Σ q·a over a Q5 block's 32 unsigned 5-bit codes: nibbles v, fifth bits qh (bit j → element j). */
@inline function blkQ5(v: v128, qh: u32, a: usize): v128 {
  const m = i16x8.splat(0x0f);
  const lo = i16x8.splat(<i16>(qh & 0xffff));
  const hi = i16x8.splat(<i16>(qh >> 16));
  const e0 = v128.or(v128.and(v, m), hib(lo, EVEN_BITS));
  const o0 = v128.or(v128.and(i16x8.shr_u(v, 8), m), hib(lo, ODD_BITS));
  const e1 = v128.or(v128.and(i16x8.shr_u(v, 4), m), hib(hi, EVEN_BITS));
  const o1 = v128.or(i16x8.shr_u(v, 12), hib(hi, ODD_BITS));
  return i32x4.add(pdot(e0, o0, a), pdot(e1, o1, a + 32));
}

// ---------------------------------------------------------------- Q8_0, Q4_0, Q5_0 × Q8_0; Q4_1, Q5_1 × Q8_1

/*
 * Arguments: `ap` the permuted i16 activation codes (32 per block), `ad` their block scales (f32, already
 * fp16-rounded as block_q8_0 stores them), `qs` Σ codes per block (i32: Q4_0's q − 8 and Q5_0's q − 16 are
 * applied exactly, as −8·Σa in lane 0 of the block's i32 sums), `xs` Q8_1's s per block (f32); each kernel
 * ignores the ones its type does not need. Per block the integer sum meets f32(d_w·d_x) in one multiply, as
 * ggml's (d_w·d_x)·sumi. Two blocks per iteration into two accumulators: measured faster than one block, and
 * than four blocks scaled by one vector multiply (V8 then runs out of xmm registers and spills).
 */

/** acc + f32(s)·f32(d_w·d_x), lane-wise (the lanes are summed at the end of the row). */
@inline function fma4(acc: v128, s: v128, dw: usize, ad: usize): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(h2f(dw) * load<f32>(ad))));
}

/** Lane 0 = 2^shift·Σa of block b (8·Σa for Q4_0, 16·Σa for Q5_0), other lanes 0. */
@inline function offset(qs: usize, b: i32, shift: i32): v128 {
  return i32x4.shl(v128.load32_zero(qs + (<usize>b << 2)), shift);
}

@inline function dotQ8_0(w: usize, ap: usize, ad: usize, nb: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let b = 0;
  for (; b + 2 <= nb; b += 2) {
    const p = w + <usize>b * 34;
    const a = ap + (<usize>b << 6);
    const d = ad + (<usize>b << 2);
    acc0 = fma4(acc0, blkQ8(p + 2, a), p, d);
    acc1 = fma4(acc1, blkQ8(p + 36, a + 64), p + 34, d + 4);
  }
  if (b < nb) {
    const p = w + <usize>b * 34;
    acc0 = fma4(acc0, blkQ8(p + 2, ap + (<usize>b << 6)), p, ad + (<usize>b << 2));
  }
  return hsum(f32x4.add(acc0, acc1));
}

export function mv_q8_0(w: usize, stride: i32, r0: i32, r1: i32, n: i32, ap: usize, ad: usize, qs: usize, xs: usize, out: usize): void {
  const nb = n >> 5;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ8_0(w + <usize>r * stride, ap, ad, nb));
}

/** Q4_0 (18-byte blocks: fp16 d, 16 bytes; low nibbles are elements 0–15, high 16–31; q − 8). */
@inline function dotQ4_0(w: usize, ap: usize, ad: usize, qs: usize, nb: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let b = 0;
  for (; b + 2 <= nb; b += 2) {
    const p = w + <usize>b * 18;
    const a = ap + (<usize>b << 6);
    const d = ad + (<usize>b << 2);
    acc0 = fma4(acc0, i32x4.sub(blkQ4(v128.load(p + 2), a), offset(qs, b, 3)), p, d);
    acc1 = fma4(acc1, i32x4.sub(blkQ4(v128.load(p + 20), a + 64), offset(qs, b + 1, 3)), p + 18, d + 4);
  }
  if (b < nb) {
    const p = w + <usize>b * 18;
    acc0 = fma4(acc0, i32x4.sub(blkQ4(v128.load(p + 2), ap + (<usize>b << 6)), offset(qs, b, 3)), p, ad + (<usize>b << 2));
  }
  return hsum(f32x4.add(acc0, acc1));
}

export function mv_q4_0(w: usize, stride: i32, r0: i32, r1: i32, n: i32, ap: usize, ad: usize, qs: usize, xs: usize, out: usize): void {
  const nb = n >> 5;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ4_0(w + <usize>r * stride, ap, ad, qs, nb));
}

/** Q5_0 (22 bytes: fp16 d, u32 qh, 16 nibble bytes; q − 16), as ggml_vec_dot_q5_0_q8_0. */
@inline function dotQ5_0(w: usize, ap: usize, ad: usize, qs: usize, nb: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let b = 0;
  for (; b + 2 <= nb; b += 2) {
    const p = w + <usize>b * 22;
    const a = ap + (<usize>b << 6);
    const d = ad + (<usize>b << 2);
    acc0 = fma4(acc0, i32x4.sub(blkQ5(v128.load(p + 6), load<u32>(p + 2), a), offset(qs, b, 4)), p, d);
    acc1 = fma4(acc1, i32x4.sub(blkQ5(v128.load(p + 28), load<u32>(p + 24), a + 64), offset(qs, b + 1, 4)), p + 22, d + 4);
  }
  if (b < nb) {
    const p = w + <usize>b * 22;
    acc0 = fma4(acc0, i32x4.sub(blkQ5(v128.load(p + 6), load<u32>(p + 2), ap + (<usize>b << 6)), offset(qs, b, 4)), p, ad + (<usize>b << 2));
  }
  return hsum(f32x4.add(acc0, acc1));
}

export function mv_q5_0(w: usize, stride: i32, r0: i32, r1: i32, n: i32, ap: usize, ad: usize, qs: usize, xs: usize, out: usize): void {
  const nb = n >> 5;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ5_0(w + <usize>r * stride, ap, ad, qs, nb));
}

/** Q4_1 (20 bytes: fp16 d, fp16 m, 16 nibble bytes): Σ_b f32(d_w·d_x)·Σ q·a + f32(m_w·s_x), as ggml_vec_dot_q4_1_q8_1. */
@inline function dotQ4_1(w: usize, ap: usize, ad: usize, xs: usize, nb: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let off: f32 = 0;
  let b = 0;
  for (; b + 2 <= nb; b += 2) {
    const p = w + <usize>b * 20;
    const a = ap + (<usize>b << 6);
    const d = ad + (<usize>b << 2);
    acc0 = fma4(acc0, blkQ4(v128.load(p + 4), a), p, d);
    acc1 = fma4(acc1, blkQ4(v128.load(p + 24), a + 64), p + 20, d + 4);
    off += h2f(p + 2) * load<f32>(xs + (<usize>b << 2)) + h2f(p + 22) * load<f32>(xs + (<usize>b << 2), 4);
  }
  if (b < nb) {
    const p = w + <usize>b * 20;
    acc0 = fma4(acc0, blkQ4(v128.load(p + 4), ap + (<usize>b << 6)), p, ad + (<usize>b << 2));
    off += h2f(p + 2) * load<f32>(xs + (<usize>b << 2));
  }
  return hsum(f32x4.add(acc0, acc1)) + off;
}

export function mv_q4_1(w: usize, stride: i32, r0: i32, r1: i32, n: i32, ap: usize, ad: usize, qs: usize, xs: usize, out: usize): void {
  const nb = n >> 5;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ4_1(w + <usize>r * stride, ap, ad, xs, nb));
}

/** Q5_1 (24 bytes: fp16 d, fp16 m, u32 qh, 16 nibble bytes; unsigned q), as Q4_1. */
@inline function dotQ5_1(w: usize, ap: usize, ad: usize, xs: usize, nb: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let off: f32 = 0;
  let b = 0;
  for (; b + 2 <= nb; b += 2) {
    const p = w + <usize>b * 24;
    const a = ap + (<usize>b << 6);
    const d = ad + (<usize>b << 2);
    acc0 = fma4(acc0, blkQ5(v128.load(p + 8), load<u32>(p + 4), a), p, d);
    acc1 = fma4(acc1, blkQ5(v128.load(p + 32), load<u32>(p + 28), a + 64), p + 24, d + 4);
    off += h2f(p + 2) * load<f32>(xs + (<usize>b << 2)) + h2f(p + 26) * load<f32>(xs + (<usize>b << 2), 4);
  }
  if (b < nb) {
    const p = w + <usize>b * 24;
    acc0 = fma4(acc0, blkQ5(v128.load(p + 8), load<u32>(p + 4), ap + (<usize>b << 6)), p, ad + (<usize>b << 2));
    off += h2f(p + 2) * load<f32>(xs + (<usize>b << 2));
  }
  return hsum(f32x4.add(acc0, acc1)) + off;
}

export function mv_q5_1(w: usize, stride: i32, r0: i32, r1: i32, n: i32, ap: usize, ad: usize, qs: usize, xs: usize, out: usize): void {
  const nb = n >> 5;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ5_1(w + <usize>r * stride, ap, ad, xs, nb));
}

// ---------------------------------------------------------------- Q8_0, Q4_0 × f32 (dequantize and transposed paths)

@inline function q8_0Block(p: usize, y: usize): void {
  const d = f32x4.splat(h2f(p));
  const z = f32x4.splat(-0.0); // x + (−0) = x for every x, −0 included (the codecs keep −0)
  deq16(v128.load(p + 2), d, z, y);
  deq16(v128.load(p + 18), d, z, y + 64);
}

@inline function q4_0Block(p: usize, y: usize): void {
  const d = f32x4.splat(h2f(p));
  const z = f32x4.splat(-0.0); // x + (−0) = x for every x, −0 included (the codecs keep −0)
  const v = v128.load(p + 2);
  const eight = i8x16.splat(8);
  deq16(i8x16.sub(v128.and(v, i8x16.splat(0x0f)), eight), d, z, y);
  deq16(i8x16.sub(i8x16.shr_u(v, 4), eight), d, z, y + 64);
}

// ---------------------------------------------------------------- Q4_1, Q5_0, Q5_1 dequantizers

@inline function q4_1Block(p: usize, y: usize): void {
  const d = f32x4.splat(h2f(p));
  const m = f32x4.splat(h2f(p + 2));
  const v = v128.load(p + 4);
  deq16(v128.and(v, i8x16.splat(0x0f)), d, m, y);
  deq16(i8x16.shr_u(v, 4), d, m, y + 64);
}

const BIT_MASKS: v128 = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);

/** 0x10 in each byte whose element's fifth bit is set in qh (elements 0–15 from qh bits 0–15, or 16–31). */
@inline function highBits(qh: u32, upper: bool): v128 {
  const v = i32x4.splat(qh);
  const sel = upper
    ? i8x16.swizzle(v, i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3))
    : i8x16.swizzle(v, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  return v128.and(i8x16.ne(v128.and(sel, BIT_MASKS), i8x16.splat(0)), i8x16.splat(0x10));
}

/** The two 16-element halves of a Q5 block's 5-bit codes (unsigned, 0–31). */
@inline function q5Lo(v: v128, qh: u32): v128 {
  return v128.or(v128.and(v, i8x16.splat(0x0f)), highBits(qh, false));
}
@inline function q5Hi(v: v128, qh: u32): v128 {
  return v128.or(i8x16.shr_u(v, 4), highBits(qh, true));
}

@inline function q5_0Block(p: usize, y: usize): void {
  const d = f32x4.splat(h2f(p));
  const qh = load<u32>(p + 2);
  const v = v128.load(p + 6);
  const sixteen = i8x16.splat(16);
  deq16(i8x16.sub(q5Lo(v, qh), sixteen), d, f32x4.splat(-0.0), y);
  deq16(i8x16.sub(q5Hi(v, qh), sixteen), d, f32x4.splat(-0.0), y + 64);
}

@inline function q5_1Block(p: usize, y: usize): void {
  const d = f32x4.splat(h2f(p));
  const m = f32x4.splat(h2f(p + 2));
  const qh = load<u32>(p + 4);
  const v = v128.load(p + 8);
  deq16(q5Lo(v, qh), d, m, y);
  deq16(q5Hi(v, qh), d, m, y + 64);
}

// ---------------------------------------------------------------- Q4_K, Q6_K × Q8_K activations

/** ggml `get_scale_min_k4`: the j-th 6-bit scale (min when `isMin`) of a Q4_K block's 12 scale bytes at s. */
@inline function scaleK4(s: usize, j: i32, isMin: bool): f32 {
  const o: usize = isMin ? 4 : 0;
  if (j < 4) return <f32>(load<u8>(s + <usize>j + o) & 63);
  const jj = <usize>j;
  if (!isMin) return <f32>((load<u8>(s + jj + 4) & 0x0f) | ((load<u8>(s + jj - 4) >> 6) << 4));
  return <f32>((load<u8>(s + jj + 4) >> 4) | ((load<u8>(s + jj) >> 6) << 4));
}

/**
 * Q4_K (144 bytes: fp16 d, fp16 dmin, 12 scale bytes, 128 nibble bytes) × Q8_K activations, as
 * ggml_vec_dot_q4_K_q8_K: per 64-element chunk c, low nibbles are elements 64c…64c+31 (scale/min pair 2c),
 * high nibbles 64c+32…64c+63 (pair 2c+1). Per 256-block Σ_sub sc·Σ q·a stays in i32 lanes and Σ_sub m·Σa
 * (`xs`: Σa per 32, i16) is one i16 dot; two float multiply-adds per block: f32(d_w·d_x)·Σ − f32(dmin_w·d_x)·Σm.
 * `ap` is the permuted i16 layout. One chunk per loop iteration: a straight-line block of all four made V8
 * hoist every load and spill (measured slower).
 */
@inline function dotQ4_K(w: usize, ap: usize, ad: usize, xs: usize, nb: i32): f32 {
  let acc = f32x4.splat(0);
  let off: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 144;
    const u0 = load<u32>(p + 4);
    const u1 = load<u32>(p + 8);
    const u2 = load<u32>(p + 12);
    // ggml's unpacking of the 12 scale bytes: eight 6-bit scales (one byte each, element order) and eight mins.
    let sc: u64 = (<u64>(u0 & 0x3f3f3f3f)) | ((<u64>((u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4))) << 32);
    let mins = i32x4.splat(u1 & 0x3f3f3f3f);
    mins = i32x4.replace_lane(mins, 1, ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4));
    const msum = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mins), v128.load(xs + (<usize>b << 4)));
    let isum = i32x4.splat(0);
    let q = p + 16;
    let a = ap + (<usize>b << 9);
    for (let c = 0; c < 4; c++) {
      const v0 = v128.load(q);
      const v1 = v128.load(q, 16);
      isum = i32x4.add(isum, i32x4.mul(i32x4.add(nibLo(v0, a), nibLo(v1, a + 32)), i32x4.splat(<i32>(sc & 0xff))));
      isum = i32x4.add(isum, i32x4.mul(i32x4.add(nibHi(v0, a + 64), nibHi(v1, a + 96)), i32x4.splat(<i32>((sc >> 8) & 0xff))));
      sc >>= 16;
      q += 32;
      a += 128;
    }
    const dx = load<f32>(ad + (<usize>b << 2));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(h2f(p) * dx)));
    off += (h2f(p + 2) * dx) * <f32>(i32x4.extract_lane(msum, 0) + i32x4.extract_lane(msum, 1) + i32x4.extract_lane(msum, 2) + i32x4.extract_lane(msum, 3));
  }
  return hsum(acc) - off;
}

export function mv_q4_k(w: usize, stride: i32, r0: i32, r1: i32, n: i32, aq: usize, ap: usize, ad: usize, xs: usize, out: usize): void {
  const nb = n >> 8;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ4_K(w + <usize>r * stride, ap, ad, xs, nb));
}

function q4_KBlock(p: usize, y: usize): void {
  const d = h2f(p);
  const dmin = h2f(p + 2);
  const mask = i8x16.splat(0x0f);
  for (let c = 0; c < 4; c++) {
    const d1 = f32x4.splat(d * scaleK4(p + 4, 2 * c, false));
    const m1 = f32x4.splat(-(dmin * scaleK4(p + 4, 2 * c, true)));
    const d2 = f32x4.splat(d * scaleK4(p + 4, 2 * c + 1, false));
    const m2 = f32x4.splat(-(dmin * scaleK4(p + 4, 2 * c + 1, true)));
    const q = p + 16 + (<usize>c << 5);
    const yc = y + (<usize>c << 8);
    const v0 = v128.load(q);
    const v1 = v128.load(q, 16);
    deq16(v128.and(v0, mask), d1, m1, yc);
    deq16(v128.and(v1, mask), d1, m1, yc + 64);
    deq16(i8x16.shr_u(v0, 4), d2, m2, yc + 128);
    deq16(i8x16.shr_u(v1, 4), d2, m2, yc + 192);
  }
}

/**
 * Q6_K (210 bytes: ql[128], qh[64], i8 scales[16], fp16 d) × Q8_K activations, as ggml_vec_dot_q6_K_q8_K:
 * per 128-element half and 16-element group l ∈ {0, 16}, four 16-element runs at l, l+32, l+64, l+96 with
 * scales sc[is], sc[is+2], sc[is+4], sc[is+6] (is = l/16); q = (ql nibble | 2 qh bits << 4) − 32. Σ sc·Σ q·a
 * stays in i32 lanes over the 256-block; one float multiply-add per block, f32(d_w·d_x)·Σ.
 */
@inline function dotQ6_K(w: usize, aq: usize, ad: usize, nb: i32): f32 {
  let acc = f32x4.splat(0);
  const mask = i8x16.splat(0x0f);
  const three = i8x16.splat(3);
  const off = i8x16.splat(32);
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 210;
    let isum = i32x4.splat(0);
    for (let half = 0; half < 2; half++) {
      const ql = p + (<usize>half << 6);
      const qh = p + 128 + (<usize>half << 5);
      const sc = p + 192 + (<usize>half << 3);
      const ah = aq + (<usize>b << 9) + (<usize>half << 8);
      for (let g = 0; g < 2; g++) {
        const l = <usize>g << 4;
        const a = v128.load(ql + l);
        const bb = v128.load(ql + l + 32);
        const h = v128.load(qh + l);
        const q1 = i8x16.sub(v128.or(v128.and(a, mask), i8x16.shl(v128.and(h, three), 4)), off);
        const q2 = i8x16.sub(v128.or(v128.and(bb, mask), i8x16.shl(v128.and(i8x16.shr_u(h, 2), three), 4)), off);
        const q3 = i8x16.sub(v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(h, 4), three), 4)), off);
        const q4 = i8x16.sub(v128.or(i8x16.shr_u(bb, 4), i8x16.shl(i8x16.shr_u(h, 6), 4)), off);
        const al = ah + (l << 1);
        isum = i32x4.add(isum, i32x4.mul(idot16(q1, al), i32x4.splat(<i32>load<i8>(sc + <usize>g))));
        isum = i32x4.add(isum, i32x4.mul(idot16(q2, al + 64), i32x4.splat(<i32>load<i8>(sc + <usize>g + 2))));
        isum = i32x4.add(isum, i32x4.mul(idot16(q3, al + 128), i32x4.splat(<i32>load<i8>(sc + <usize>g + 4))));
        isum = i32x4.add(isum, i32x4.mul(idot16(q4, al + 192), i32x4.splat(<i32>load<i8>(sc + <usize>g + 6))));
      }
    }
    const scale = h2f(p + 208) * load<f32>(ad + (<usize>b << 2));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(scale)));
  }
  return hsum(acc);
}

/** Q6_K reads the natural-order codes `aq`; `ap` and `xs` (Q4_K's permuted codes and Σq per 32) keep the K kernels' one signature. */
export function mv_q6_k(w: usize, stride: i32, r0: i32, r1: i32, n: i32, aq: usize, ap: usize, ad: usize, xs: usize, out: usize): void {
  const nb = n >> 8;
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotQ6_K(w + <usize>r * stride, aq, ad, nb));
}

function q6_KBlock(p: usize, y: usize): void {
  const mask = i8x16.splat(0x0f);
  const three = i8x16.splat(3);
  const off = i8x16.splat(32);
  const z = f32x4.splat(-0.0); // x + (−0) = x for every x, −0 included (the codecs keep −0)
  const d = h2f(p + 208);
  for (let half = 0; half < 2; half++) {
    const ql = p + (<usize>half << 6);
    const qh = p + 128 + (<usize>half << 5);
    const sc = p + 192 + (<usize>half << 3);
    const yh = y + (<usize>half << 9);
    for (let g = 0; g < 2; g++) {
      const l = <usize>g << 4;
      const a = v128.load(ql + l);
      const bb = v128.load(ql + l + 32);
      const h = v128.load(qh + l);
      const yl = yh + (l << 2);
      deq16(i8x16.sub(v128.or(v128.and(a, mask), i8x16.shl(v128.and(h, three), 4)), off), f32x4.splat(d * <f32>load<i8>(sc + <usize>g)), z, yl);
      deq16(
        i8x16.sub(v128.or(v128.and(bb, mask), i8x16.shl(v128.and(i8x16.shr_u(h, 2), three), 4)), off),
        f32x4.splat(d * <f32>load<i8>(sc + <usize>g + 2)), z, yl + 128,
      );
      deq16(
        i8x16.sub(v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(h, 4), three), 4)), off),
        f32x4.splat(d * <f32>load<i8>(sc + <usize>g + 4)), z, yl + 256,
      );
      deq16(i8x16.sub(v128.or(i8x16.shr_u(bb, 4), i8x16.shl(i8x16.shr_u(h, 6), 4)), off), f32x4.splat(d * <f32>load<i8>(sc + <usize>g + 6)), z, yl + 384);
    }
  }
}

@inline function hsumi(s: v128): i32 {
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

// ---------------------------------------------------------------- activation quantizers (llama.cpp's vec_dot_types)

/**
 * fp32 → fp16 bits as ggml's `ggml_compute_fp32_to_fp16` (and F16C's round-to-nearest-even): the branch-free
 * conversion of src/formats/codecs/f16.ts fp32ToFp16Bits, in f32 arithmetic that wasm makes exact.
 */
@inline function f2h(x: f32): u32 {
  let base = (Mathf.abs(x) * reinterpret<f32>(0x77800000)) * reinterpret<f32>(0x08800000);
  const w = reinterpret<u32>(x);
  const shl1w = w << 1;
  const sign = w & 0x80000000;
  let bias = shl1w & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits = reinterpret<u32>(base);
  const nonsign = ((bits >> 13) & 0x7c00) + (bits & 0x0fff);
  return ((sign >> 16) | (shl1w > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** The f32 value of x rounded to fp16. */
@inline function fp16Round(x: f32): f32 {
  return load<f32>(fp16tab + (<usize>f2h(x) << 2));
}

@inline function maxAbs4(m: v128, p: usize): v128 {
  return f32x4.max(m, f32x4.abs(v128.load(p)));
}

@inline function hmax(v: v128): f32 {
  return Mathf.max(Mathf.max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), Mathf.max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** Four f32 at p times s, rounded half to even (`_mm256_round_ps` nearest; ggml's nearest_int) to i32. */
@inline function round4(p: usize, s: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), s)));
}

/** 16 codes (i16 lanes: lo = elements 0–7, hi = 8–15) stored permuted at ap: the 8 even-indexed, then the 8 odd-indexed. */
@inline function storePermuted(ap: usize, lo: v128, hi: v128): void {
  v128.store(ap, i16x8.shuffle(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14));
  v128.store(ap, i16x8.shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15), 16);
}

/**
 * x[0..n) → Q8_0/Q8_1 activations as activations.ts quantizeActivationsQ8 computes them (ggml-cpu's x86
 * quantize_row_q8_0/_q8_1): per 32-block d = max|x|/127 stored fp16-rounded in `ad`, codes round(x·(127/max|x|))
 * permuted into `ap` (i16), Σ codes in `qs` (i32), s = fp16(d·Σq) in `xs` (f32).
 */
export function quant_q8(x: usize, n: i32, ap: usize, ad: usize, qs: usize, xs: usize): void {
  for (let b = 0; b < (n >> 5); b++) {
    const p = x + (<usize>b << 7);
    let m = f32x4.abs(v128.load(p));
    for (let k = 16; k < 128; k += 16) m = maxAbs4(m, p + <usize>k);
    const amax = hmax(m);
    const d: f32 = amax / 127;
    const id = f32x4.splat(amax != 0 ? <f32>127 / amax : 0);
    const q0 = round4(p, id);
    const q1 = round4(p + 16, id);
    const q2 = round4(p + 32, id);
    const q3 = round4(p + 48, id);
    const q4 = round4(p + 64, id);
    const q5 = round4(p + 80, id);
    const q6 = round4(p + 96, id);
    const q7 = round4(p + 112, id);
    const a = ap + (<usize>b << 6);
    storePermuted(a, i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
    storePermuted(a + 32, i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7));
    const sum = hsumi(i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7))));
    store<f32>(ad + (<usize>b << 2), fp16Round(d));
    store<i32>(qs + (<usize>b << 2), sum);
    store<f32>(xs + (<usize>b << 2), fp16Round(d * <f32>sum));
  }
}

/**
 * x[0..n) → Q8_K activations as activations.ts quantizeActivationsQ8K computes them (ggml quantize_row_q8_K_ref):
 * per 256-block, max = the first x of largest |x|, iscale = −127/max, codes min(127, round(iscale·x)) in element
 * order into `aq` and permuted into `ap` (i16), d = 1/iscale in `ad` (f32; 0 for an all-zero block), Σ codes per
 * 32 in `xs` (i16).
 */
export function quant_q8k(x: usize, n: i32, aq: usize, ap: usize, ad: usize, xs: usize): void {
  for (let b = 0; b < (n >> 8); b++) {
    const p = x + (<usize>b << 10);
    let m = f32x4.abs(v128.load(p));
    for (let k = 16; k < 1024; k += 16) m = maxAbs4(m, p + <usize>k);
    const amax = hmax(m);
    const q = aq + (<usize>b << 9);
    const a = ap + (<usize>b << 9);
    const s = xs + (<usize>b << 4);
    if (amax == 0) {
      memory.fill(q, 0, 512);
      memory.fill(a, 0, 512);
      memory.fill(s, 0, 16);
      store<f32>(ad + (<usize>b << 2), 0);
      continue;
    }
    let max: f32 = 0;
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(p + (<usize>j << 2));
      if (Mathf.abs(v) == amax) {
        max = v;
        break;
      }
    }
    const iscale: f32 = -127 / max;
    const is = f32x4.splat(iscale);
    const top = i32x4.splat(127);
    for (let g = 0; g < 16; g += 2) {
      const e = p + (<usize>g << 6);
      const q0 = i32x4.min_s(round4(e, is), top);
      const q1 = i32x4.min_s(round4(e + 16, is), top);
      const q2 = i32x4.min_s(round4(e + 32, is), top);
      const q3 = i32x4.min_s(round4(e + 48, is), top);
      const q4 = i32x4.min_s(round4(e + 64, is), top);
      const q5 = i32x4.min_s(round4(e + 80, is), top);
      const q6 = i32x4.min_s(round4(e + 96, is), top);
      const q7 = i32x4.min_s(round4(e + 112, is), top);
      const n0 = i16x8.narrow_i32x4_s(q0, q1);
      const n1 = i16x8.narrow_i32x4_s(q2, q3);
      const n2 = i16x8.narrow_i32x4_s(q4, q5);
      const n3 = i16x8.narrow_i32x4_s(q6, q7);
      const o = <usize>g << 5;
      v128.store(q + o, n0);
      v128.store(q + o, n1, 16);
      v128.store(q + o, n2, 32);
      v128.store(q + o, n3, 48);
      storePermuted(a + o, n0, n1);
      storePermuted(a + o + 32, n2, n3);
      const sum = hsumi(i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7))));
      store<i16>(s + (<usize>g), <i16>sum);
    }
    store<f32>(ad + (<usize>b << 2), <f32>1 / iscale);
  }
}

// ---------------------------------------------------------------- APR Q8 / Q4 (encoded over the flattened tensor)

/**
 * APR Q8: `[f32 scale][i8 × N]`, y = f32(q·scale). Row r of n elements is codes [r·n, (r+1)·n) after the
 * scale: no block structure, so any n.
 */
@inline function dotAprQ8(codes: usize, scale: f32, x: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  const s = f32x4.splat(scale);
  const z = f32x4.splat(-0.0); // x + (−0) = x for every x, −0 included (the codecs keep −0)
  let i = 0;
  for (; i + 16 <= n; i += 16) acc = dot16(v128.load(codes + <usize>i), s, z, x + (<usize>i << 2), acc);
  let t = hsum(acc);
  for (; i < n; i++) t += (<f32>load<i8>(codes + <usize>i) * scale) * load<f32>(x + (<usize>i << 2));
  return t;
}

export function mv_apr_q8(base: usize, r0: i32, r1: i32, n: i32, x: usize, out: usize): void {
  const scale = load<f32>(base);
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotAprQ8(base + 4 + <usize>r * n, scale, x, n));
}

/** An APR Q4 block's scale: its fp16, or 0 when that is NaN, ±Inf or below F16_MIN_NORMAL (aprender GH-186). */
@inline function aprQ4Scale(p: usize): f32 {
  const s = h2f(p);
  return isFinite<f32>(s) && Mathf.abs(s) >= <f32>6.103515625e-5 ? s : 0;
}

/** Element e of an APR Q4 tensor (blocks of 32 over the flattened tensor; even index → low nibble). */
@inline function aprQ4At(base: usize, e: i32): f32 {
  const p = base + <usize>(e >> 5) * 18;
  const within = e & 31;
  const byte = load<u8>(p + 2 + <usize>(within >> 1));
  const q = (within & 1) != 0 ? byte >> 4 : byte & 0x0f;
  return <f32>(<i32>q - 8) * aprQ4Scale(p);
}

/** The 32 codes (q − 8, in element order) of the APR Q4 block at p, as two i8x16: even elements are low nibbles. */
@inline function aprQ4Lo(v: v128): v128 {
  const lo = v128.and(v, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(v, 4);
  return i8x16.sub(i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), i8x16.splat(8));
}
@inline function aprQ4Hi(v: v128): v128 {
  const lo = v128.and(v, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(v, 4);
  return i8x16.sub(i8x16.shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), i8x16.splat(8));
}

@inline function dotAprQ4(base: usize, e0: i32, x: usize, n: i32): f32 {
  let t: f32 = 0;
  let i = 0;
  // Head: up to the first 32-aligned element of the flattened tensor.
  while (i < n && ((e0 + i) & 31) != 0) {
    t += aprQ4At(base, e0 + i) * load<f32>(x + (<usize>i << 2));
    i++;
  }
  let acc = f32x4.splat(0);
  const z = f32x4.splat(-0.0); // x + (−0) = x for every x, −0 included (the codecs keep −0)
  for (; i + 32 <= n; i += 32) {
    const p = base + <usize>((e0 + i) >> 5) * 18;
    const s = f32x4.splat(aprQ4Scale(p));
    const v = v128.load(p + 2);
    const xi = x + (<usize>i << 2);
    acc = dot16(aprQ4Lo(v), s, z, xi, acc);
    acc = dot16(aprQ4Hi(v), s, z, xi + 64, acc);
  }
  t += hsum(acc);
  for (; i < n; i++) t += aprQ4At(base, e0 + i) * load<f32>(x + (<usize>i << 2));
  return t;
}

export function mv_apr_q4(base: usize, r0: i32, r1: i32, n: i32, x: usize, out: usize): void {
  for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), dotAprQ4(base, r * n, x, n));
}

// ---------------------------------------------------------------- dequantize rows; transposed (Conv1D) product

/** Type ids shared with the host (src/engine/kernels.ts WASM_TYPE). */
const F32: i32 = 0;
const F16: i32 = 1;
const BF16: i32 = 2;
const Q8_0: i32 = 3;
const Q4_0: i32 = 4;
const Q4_1: i32 = 5;
const Q5_0: i32 = 6;
const Q5_1: i32 = 7;
const Q4_K: i32 = 8;
const Q6_K: i32 = 9;
const APR_Q8: i32 = 10;
const APR_Q4: i32 = 11;

/**
 * Stored row r (n elements) of a `type` matrix at w with `stride` bytes per row (unused for the APR
 * types, which address the flattened tensor) → n f32 at y.
 */
export function dq_row(type: i32, w: usize, stride: i32, r: i32, n: i32, y: usize): void {
  const p = w + <usize>r * stride;
  if (type == F32) {
    memory.copy(y, p, <usize>n << 2);
  } else if (type == F16) {
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(p + (<usize>i << 1));
      v128.store(y + (<usize>i << 2), f16x4(i32x4.extend_low_i16x8_u(h)));
      v128.store(y + (<usize>i << 2), f16x4(i32x4.extend_high_i16x8_u(h)), 16);
    }
    for (; i < n; i++) store<f32>(y + (<usize>i << 2), h2f(p + (<usize>i << 1)));
  } else if (type == BF16) {
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(p + (<usize>i << 1));
      v128.store(y + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
      v128.store(y + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
    }
    for (; i < n; i++) store<u32>(y + (<usize>i << 2), (<u32>load<u16>(p + (<usize>i << 1))) << 16);
  } else if (type == APR_Q8) {
    const scale = load<f32>(w);
    const codes = w + 4 + <usize>r * n;
    let i = 0;
    for (; i + 16 <= n; i += 16) deq16(v128.load(codes + <usize>i), f32x4.splat(scale), f32x4.splat(-0.0), y + (<usize>i << 2));
    for (; i < n; i++) store<f32>(y + (<usize>i << 2), <f32>load<i8>(codes + <usize>i) * scale);
  } else if (type == APR_Q4) {
    const e0 = r * n;
    let i = 0;
    while (i < n && ((e0 + i) & 31) != 0) {
      store<f32>(y + (<usize>i << 2), aprQ4At(w, e0 + i));
      i++;
    }
    for (; i + 32 <= n; i += 32) {
      const b = w + <usize>((e0 + i) >> 5) * 18;
      const s = f32x4.splat(aprQ4Scale(b));
      const v = v128.load(b + 2);
      deq16(aprQ4Lo(v), s, f32x4.splat(-0.0), y + (<usize>i << 2));
      deq16(aprQ4Hi(v), s, f32x4.splat(-0.0), y + (<usize>i << 2) + 64);
    }
    for (; i < n; i++) store<f32>(y + (<usize>i << 2), aprQ4At(w, e0 + i));
  } else if (type == Q4_K || type == Q6_K) {
    const nb = n >> 8;
    for (let b = 0; b < nb; b++) {
      if (type == Q4_K) q4_KBlock(p + <usize>b * 144, y + (<usize>b << 10));
      else q6_KBlock(p + <usize>b * 210, y + (<usize>b << 10));
    }
  } else {
    const nb = n >> 5;
    for (let b = 0; b < nb; b++) {
      const yb = y + (<usize>b << 7);
      if (type == Q8_0) q8_0Block(p + <usize>b * 34, yb);
      else if (type == Q4_0) q4_0Block(p + <usize>b * 18, yb);
      else if (type == Q4_1) q4_1Block(p + <usize>b * 20, yb);
      else if (type == Q5_0) q5_0Block(p + <usize>b * 22, yb);
      else if (type == Q5_1) q5_1Block(p + <usize>b * 24, yb);
    }
  }
}

/** y[0..n) += a·x[0..n). */
@inline function axpy(y: usize, x: usize, a: f32, n: i32): void {
  const av = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + a * load<f32>(x + o));
  }
}

/**
 * out[0..nOut) = Σ_i x[i]·W[i, :] for a weight stored [in, out] (an HF GPT-2 Conv1D): stored rows i in
 * [i0, i1) are decoded one at a time into `scratch` (nOut f32) and accumulated; out is zeroed first.
 */
export function mvt(type: i32, w: usize, stride: i32, i0: i32, i1: i32, nOut: i32, x: usize, out: usize, scratch: usize): void {
  memory.fill(out, 0, <usize>nOut << 2);
  for (let i = i0; i < i1; i++) {
    const xi = load<f32>(x + (<usize>i << 2));
    if (type == F32) {
      axpy(out, w + <usize>i * stride, xi, nOut);
    } else {
      dq_row(type, w, stride, i, nOut, scratch);
      axpy(out, scratch, xi, nOut);
    }
  }
}
