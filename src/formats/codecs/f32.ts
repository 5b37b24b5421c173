/**
 * Single-precision arithmetic helpers for reproducing ggml's C reference code bit for bit.
 *
 * JS computes in binary64. For +, −, ×, ÷ of two f32 operands, computing in binary64 and rounding
 * once to f32 (`Math.fround`) gives the correctly rounded f32 result (binary64 has ≥ 2·24+2 bits,
 * so the double rounding is innocuous). Every f32 operation in the C code is therefore written as
 * `f32(a op b)`.
 */

export const f32 = Math.fround;

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE-754 bits of the f32 nearest to `x`. */
export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0] as number;
}

/** The f32 whose bits are `bits` (as an unsigned 32-bit integer). */
export function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0] as number;
}

/** C `roundf`: nearest integer, halves away from zero (not banker's rounding). */
export function roundf(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.floor(Math.abs(x) + 0.5);
  return x < 0 ? -r : r;
}

/**
 * C conversion of a float to a small integer type on x86: truncation toward zero; a NaN or
 * out-of-range value becomes the "integer indefinite" 0x80000000 whose low byte is 0.
 * Callers only pass values whose integer part fits in 8 bits, except NaN.
 */
export function truncToInt(x: number): number {
  if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 31) return -(2 ** 31);
  return Math.trunc(x);
}

/** Next f32 above `x` (x a finite f32 or -Infinity). */
function nextUpF32(x: number): number {
  if (x === 0) return bitsToF32(1);
  const b = f32ToBits(x);
  return x > 0 ? bitsToF32(b + 1) : bitsToF32(b - 1);
}

/** Next f32 below `x`. */
function nextDownF32(x: number): number {
  return -nextUpF32(-x);
}

/**
 * `fmaf(a, b, c)` with a single rounding, for f32 operands: what a compiler emits for `a*b + c` when
 * it contracts the expression into an FMA instruction (e.g. GCC's `-ffp-contract=fast` with FMA
 * available). Kept to reproduce such builds; the llama.cpp golden files were not made that way.
 *
 * `a*b` is exact in binary64 (24 × 24 bits). The sum is rounded once to binary64 (`s`) with the exact
 * error `e` from TwoSum; rounding `s` to f32 is then correct unless `s` sits exactly on an f32 midpoint
 * while `e ≠ 0`, in which case `e`'s sign breaks the tie.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  if (!Number.isFinite(s)) return f32(s);
  const bp = s - c;
  const e = p - bp + (c - (s - bp));
  const r = f32(s);
  if (e === 0 || r === s || !Number.isFinite(r)) return r;
  const lo = r < s ? r : nextDownF32(r);
  const hi = r < s ? nextUpF32(r) : r;
  if (s !== (lo + hi) / 2) return r;
  return e > 0 ? hi : lo;
}
