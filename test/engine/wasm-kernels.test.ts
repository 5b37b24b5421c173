import { describe, expect, it } from 'vitest';
import { nmse } from '../../src/checks/metrics.js';
import {
  Q8_1_ACTIVATION_TYPES,
  Q8_ACTIVATION_TYPES,
  Q8K_ACTIVATION_TYPES,
  quantizeActivationsQ8,
  quantizeActivationsQ8K,
} from '../../src/engine/activations.js';
import { TsMatVec, WASM_TYPE, WasmMatVec, type WasmDType } from '../../src/engine/kernels.js';
import type { Weight } from '../../src/engine/weights.js';
import { bf16BitsToFp32, dequantize, quantize, TYPE_INFO } from '../../src/formats/codecs/index.js';
import { fp16Table } from '../../src/formats/codecs/f16.js';
import { Prng } from '../../src/zoo/prng.js';

// The bound (item 7): the WASM product equals dequantize-then-f32 up to summation order.
const NMSE_MAX = 1e-10;

/** A seeded uniform generator (the zoo's): the same values on every run. */
function rng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.uniform();
}

/** Values with per-row scale spread, an all-zero block and outliers: what a quantizer meets in a trained model. */
function values(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const v = Float32Array.from({ length: n }, (_, i) => (r() - 0.5) * (1 + ((i >> 5) % 5)) * 0.2);
  v.fill(0, 32, 64);
  for (let i = 100; i < n; i += 997) v[i] = (r() - 0.5) * 8;
  return v;
}

/** A weight [rows (out) × cols (in)], stored [out, in] or (transposed, a Conv1D) [in, out], in `dtype`. */
function weight(dtype: WasmDType, rows: number, cols: number, isTransposed: boolean, seed: number): { w: Weight; dense: Float32Array } {
  const [storedRows, storedCols] = isTransposed ? [cols, rows] : [rows, cols];
  // APR_Q4 encodes the flattened tensor in blocks of 32 that ignore rows; APR_Q8 has one scale for it all.
  const bytes = quantize(dtype, values(storedRows * storedCols, seed), {});
  const info = TYPE_INFO[dtype];
  const rowBytes = info.isWholeTensor === true ? 0 : (storedCols / info.blockSize) * info.typeSize;
  const w: Weight = { dtype, rows, cols, isTransposed, storedRows, storedCols, rowBytes, bytes };
  return { w, dense: dequantize(dtype, bytes, storedRows * storedCols) };
}

/**
 * The plain reference: dequantize the whole tensor, multiply in f64 — by the activations llama.cpp quantizes x
 * to for the weight type (Q8_0, Q8_1 or Q8_K codes times their scale). Q8_1's min term uses the block's stored
 * s = fp16(d·Σq) in place of d·Σq, as ggml does: Σ_b m_b·(s_b − d_b·Σq_b) is added to the dense product.
 */
function reference(w: Weight, dense: Float32Array, x: Float32Array): Float32Array {
  let xe = x;
  let minTerm = (_r: number): number => 0;
  if (!w.isTransposed && (Q8_ACTIVATION_TYPES.has(w.dtype) || Q8_1_ACTIVATION_TYPES.has(w.dtype))) {
    const a = quantizeActivationsQ8(x);
    xe = Float32Array.from(a.q, (q, i) => q * (a.d[i >> 5] as number));
    if (Q8_1_ACTIVATION_TYPES.has(w.dtype)) {
      const t = fp16Table();
      const blockBytes = TYPE_INFO[w.dtype].typeSize;
      minTerm = (r) => {
        let s = 0;
        for (let b = 0; b < w.cols / 32; b++) {
          const o = r * w.rowBytes + b * blockBytes + 2;
          const m = t[(w.bytes[o] as number) | ((w.bytes[o + 1] as number) << 8)] as number;
          let sq = 0;
          for (let j = 0; j < 32; j++) sq += a.q[b * 32 + j] as number;
          s += m * ((a.s[b] as number) - (a.d[b] as number) * sq);
        }
        return s;
      };
    }
  } else if (!w.isTransposed && Q8K_ACTIVATION_TYPES.has(w.dtype)) {
    const a = quantizeActivationsQ8K(x);
    xe = Float32Array.from(a.q, (q, i) => q * (a.d[i >> 8] as number));
  }
  const out = new Float32Array(w.rows);
  for (let r = 0; r < w.rows; r++) {
    let s = minTerm(r);
    for (let c = 0; c < w.cols; c++)
      s += (w.isTransposed ? (dense[c * w.rows + r] as number) : (dense[r * w.cols + c] as number)) * (xe[c] as number);
    out[r] = s;
  }
  return out;
}

const TYPES = Object.keys(WASM_TYPE) as WasmDType[];
const ROW_ADDRESSED = new Set<WasmDType>(['F32', 'F16', 'BF16', 'APR_Q8', 'APR_Q4']);

describe('WASM SIMD mat-vec vs the TypeScript dequantize-then-f32 path, every stored type', () => {
  const cases = TYPES.flatMap((dtype) => {
    const block = TYPE_INFO[dtype].isWholeTensor === true ? 1 : TYPE_INFO[dtype].blockSize;
    const multiple = Math.max(block, 32) * (block >= 256 ? 2 : 16);
    // 37 rows of 512 (K-quants: two super-blocks), both orientations; and for types addressable at any
    // width, 7 × 50 (tails; APR_Q4 rows straddle its 32-blocks).
    const shapes: [number, number][] = [[37, multiple]];
    if (ROW_ADDRESSED.has(dtype)) shapes.push([7, 50]);
    // 32-block types: the kernels take four blocks at a time; 18 blocks (SmolLM's 576) and 3 leave one to three over.
    if (block === 32) shapes.push([9, 576], [3, 96]);
    return shapes.flatMap(([rows, cols]) => [false, true].map((isTransposed) => ({ dtype, rows, cols, isTransposed })));
  });
  for (const { dtype, rows, cols, isTransposed } of cases) {
    // Transposed (a Conv1D [in, out]): the product is cols × rows, so the stored rows are the `cols`-wide ones.
    it(`${dtype} ${rows}×${cols}${isTransposed ? ' stored [in, out]' : ''}: NMSE ≤ ${NMSE_MAX} and the same as the TS engine path`, () => {
      const { w, dense } = weight(dtype, isTransposed ? cols : rows, isTransposed ? rows : cols, isTransposed, rows * 131 + cols);
      const x = values(w.cols, 7 + cols);
      const want = reference(w, dense, x);
      const ts = new Float32Array(w.rows);
      new TsMatVec().run(x, [{ w, out: ts }]);
      const mv = new WasmMatVec();
      mv.prepare(w);
      const got = new Float32Array(w.rows);
      mv.run(x, [{ w, out: got }]);
      expect(nmse(want, got)).toBeLessThanOrEqual(NMSE_MAX);
      expect(nmse(want, ts)).toBeLessThanOrEqual(NMSE_MAX);
      // Not a degenerate comparison: the product is far from zero.
      expect(want.some((v) => Math.abs(v) > 1e-3)).toBe(true);
      // Every stored row decodes, in the kernels, to exactly what the codec decodes.
      for (const r of [0, w.storedRows - 1]) {
        const row = mv.dequantizeRow(w, r);
        expect(Array.from(row)).toEqual(Array.from(dense.subarray(r * w.storedCols, (r + 1) * w.storedCols)));
      }
    });
  }

  it('a bias is added after the product; several products share one input', () => {
    const a = weight('Q8_0', 40, 64, false, 1);
    const b = weight('Q4_K', 9, 256, false, 2);
    const mv = new WasmMatVec();
    mv.prepare(a.w);
    mv.prepare(b.w);
    const x = values(64, 3);
    const bias = Float32Array.from({ length: 40 }, (_, i) => i - 20);
    const outA = new Float32Array(40);
    mv.run(x, [{ w: a.w, out: outA, bias }]);
    const want = reference(a.w, a.dense, x).map((v, i) => v + (bias[i] as number));
    expect(nmse(want, outA)).toBeLessThanOrEqual(NMSE_MAX);
    const x2 = values(256, 4);
    const outB = new Float32Array(9);
    mv.run(x2, [{ w: b.w, out: outB }]);
    expect(nmse(reference(b.w, b.dense, x2), outB)).toBeLessThanOrEqual(NMSE_MAX);
  });
});

/** Codes widened and permuted as the kernels read them: per 16 elements, the even-indexed ones, then the odd-indexed. */
function permuted(q: Int8Array): number[] {
  const out: number[] = [];
  for (let g = 0; g < q.length; g += 16) {
    for (let k = 0; k < 8; k++) out.push(q[g + 2 * k] as number);
    for (let k = 0; k < 8; k++) out.push(q[g + 2 * k + 1] as number);
  }
  return out;
}

describe('WASM activation quantizers equal the TS ones (themselves bit for bit with ggml: activations-ggml.test.ts)', () => {
  /** Model-like activations, an all-zero block, rounding ties, a negative largest |x| and repeated maxima of both signs. */
  function activations(n: number, seed: number): Float32Array {
    const x = values(n, seed).map((v, i) => v * (1 + (i % 7)));
    x.fill(0, 256, 512);
    for (let j = 512; j < 768; j++) x[j] = ((j % 17) - 8) * 0.5;
    x[515] = -4;
    x[773] = -9;
    x[777] = 9;
    x[779] = -9;
    return x;
  }
  const n = 1024;
  const mv = new WasmMatVec();
  const a = mv.arena;
  const xPtr = a.alloc(n * 4);
  const [p1, p2, p3, p4] = [a.alloc(n * 2), a.alloc(n * 2), a.alloc(n * 4), a.alloc(n * 4)];
  for (const seed of [1, 2, 3]) {
    it(`Q8_0/Q8_1 (seed ${seed}): d, permuted codes, Σq and s bit for bit`, () => {
      const x = activations(n, seed);
      a.f32(xPtr, n).set(x);
      a.k.quant_q8(xPtr, n, p1, p2, p3, p4);
      const want = quantizeActivationsQ8(x);
      expect(Array.from(a.i16(p1, n))).toEqual(permuted(want.q));
      expect(Array.from(a.f32(p2, n / 32))).toEqual(Array.from(want.d));
      const sums = Array.from({ length: n / 32 }, (_, b) => want.q.subarray(b * 32, b * 32 + 32).reduce((s, v) => s + v, 0));
      expect(Array.from(a.i32(p3, n / 32))).toEqual(sums);
      expect(Array.from(a.f32(p4, n / 32))).toEqual(Array.from(want.s));
    });
    it(`Q8_K (seed ${seed}): codes in both orders, d and Σq per 32 bit for bit`, () => {
      const x = activations(n, seed);
      a.f32(xPtr, n).set(x);
      a.i16(p1, n).fill(-1);
      a.k.quant_q8k(xPtr, n, p1, p2, p3, p4);
      const want = quantizeActivationsQ8K(x);
      expect(Array.from(a.i16(p1, n))).toEqual(Array.from(want.q));
      expect(Array.from(a.i16(p2, n))).toEqual(permuted(want.q));
      expect(Array.from(a.f32(p3, n / 256))).toEqual(Array.from(want.d));
      const sums = Array.from({ length: n / 32 }, (_, g) => (want.bsums[2 * g] as number) + (want.bsums[2 * g + 1] as number));
      expect(Array.from(a.i16(p4, n / 32))).toEqual(sums);
    });
  }
});

describe('WASM decoders, bit for bit', () => {
  const mv = new WasmMatVec();
  /** Every 16-bit pattern of a half type, decoded by the WASM row decoder, must be `want(bits)` exactly (NaN as NaN). */
  function allPatterns(dtype: 'F16' | 'BF16', want: (bits: number) => number): void {
    const bytes = new Uint8Array(65536 * 2);
    for (let h = 0; h < 65536; h++) {
      bytes[2 * h] = h & 0xff;
      bytes[2 * h + 1] = h >>> 8;
    }
    const w: Weight = { dtype, rows: 1, cols: 65536, isTransposed: false, storedRows: 1, storedCols: 65536, rowBytes: 65536 * 2, bytes };
    mv.prepare(w);
    const got = mv.dequantizeRow(w, 0);
    for (let h = 0; h < 65536; h++) {
      const v = want(h);
      if (Number.isNaN(v)) expect(Number.isNaN(got[h]), `0x${h.toString(16)}`).toBe(true);
      else expect(Object.is(got[h], v), `0x${h.toString(16)}: ${got[h]} vs ${v}`).toBe(true);
    }
  }
  it('F16: all 65 536 bit patterns (subnormals, ±Inf, NaN) decode as the codec table', () => {
    const table = fp16Table();
    allPatterns('F16', (h) => table[h] as number); // h < 65536, the table's length
  });
  it('BF16: all 65 536 bit patterns', () => allPatterns('BF16', bf16BitsToFp32));
});
