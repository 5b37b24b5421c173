/**
 * The engine's activation quantizers and integer block dots against ggml itself: the libggml-base and
 * libggml-cpu (haswell: AVX2, the x86 SIMD paths llama.cpp runs on an AVX2 machine) that node-llama-cpp ships,
 * called through koffi on the same inputs. Quantization must match bit for bit; dot products agree up to the
 * f32 summation order (ggml sums in f32, the TS path in f64).
 */
import { existsSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';
import { describe, expect, it } from 'vitest';
import { locateLlamaLibrary } from '../../src/converters/llama-cpp-quantize.js';
import {
  dotQ8Activations,
  dotQ8KActivations,
  quantizeActivationsQ8,
  quantizeActivationsQ8K,
  type Q8Activations,
  type Q8KActivations,
} from '../../src/engine/activations.js';
import { fp16Table } from '../../src/formats/codecs/f16.js';
import { dequantize, quantize } from '../../src/formats/codecs/index.js';
import type { DType } from '../../src/formats/types.js';
import { Prng } from '../../src/zoo/prng.js';

const lib = locateLlamaLibrary();
const bins = lib.found ? dirname(lib.path) : '';
const cpuLib = join(bins, 'libggml-cpu-haswell.so');
const hasAvx2 = process.platform === 'linux' && /\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const usable = lib.found && existsSync(cpuLib) && hasAvx2;

/** A seeded uniform generator (the zoo's): the same values on every run. */
function rng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.uniform();
}

/**
 * Activations as a model produces them, plus the edge cases of the quantizers: an all-zero 256-block, values
 * on rounding ties (k + 0.5 after scaling), a block whose largest |x| is negative, repeated maxima of both signs.
 */
function activations(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = Float32Array.from({ length: n }, () => (r() - 0.5) * 4 * (r() < 0.05 ? 10 : 1));
  x.fill(0, 256, 512);
  for (let j = 512; j < 768; j++) x[j] = ((j % 17) - 8) * 0.5; // max |x| 4 → scale 127/4: k/2·127/4 lands on ties
  x[512 + 3] = -4;
  x[768 + 5] = -9;
  x[768 + 9] = 9;
  x[768 + 11] = -9;
  return x;
}

const N = 1024;

describe.skipIf(!usable)('activation quantization and block dots vs ggml (node-llama-cpp libggml)', () => {
  // The CPU library needs the base one loaded first (its DT_NEEDED is found through $ORIGIN).
  const base = usable ? koffi.load(join(bins, 'libggml-base.so')) : undefined;
  const cpu = usable ? koffi.load(cpuLib) : undefined;
  const fn = (l: LibraryHandle | undefined, decl: string): ReturnType<LibraryHandle['func']> => {
    if (l === undefined) throw new Error('not loaded');
    return l.func(decl);
  };
  const quantizeQ8K = fn(base, 'void quantize_row_q8_K_ref(const float *x, _Out_ uint8_t *y, int64_t k)');
  const quantizeQ8_0 = fn(cpu, 'void quantize_row_q8_0(const float *x, _Out_ uint8_t *y, int64_t k)');
  const quantizeQ8_1 = fn(cpu, 'void quantize_row_q8_1(const float *x, _Out_ uint8_t *y, int64_t k)');
  const vecDot = (name: string): ReturnType<LibraryHandle['func']> =>
    fn(cpu, `void ${name}(int n, _Inout_ float *s, size_t bs, const uint8_t *vx, size_t bx, const uint8_t *vy, size_t by, int nrc)`);
  const t = fp16Table();
  // ggml's CPU backend fills its fp16 → f32 table here (the dots decode block scales through it).
  if (usable) fn(cpu, 'void ggml_cpu_init(void)')();

  /** ggml's block_q8_K array (f32 d, i8 qs[256], i16 bsums[16]: 292 bytes) → the engine's struct. */
  function ggmlQ8K(x: Float32Array): { raw: Uint8Array; a: Q8KActivations } {
    const raw = new Uint8Array((x.length / 256) * 292);
    quantizeQ8K(x, raw, x.length);
    const dv = new DataView(raw.buffer);
    const nb = x.length / 256;
    const a: Q8KActivations = { d: new Float32Array(nb), q: new Int8Array(x.length), bsums: new Int16Array(x.length / 16) };
    for (let b = 0; b < nb; b++) {
      a.d[b] = dv.getFloat32(b * 292, true);
      a.q.set(new Int8Array(raw.buffer, b * 292 + 4, 256), b * 256);
      for (let g = 0; g < 16; g++) a.bsums[b * 16 + g] = dv.getInt16(b * 292 + 260 + 2 * g, true);
    }
    return { raw, a };
  }

  /** ggml's block_q8_0 (fp16 d, i8 qs[32]: 34 bytes) or block_q8_1 (fp16 d, fp16 s, qs: 36 bytes) → the engine's struct. */
  function ggmlQ8(x: Float32Array, withSum: boolean): { raw: Uint8Array; a: Q8Activations } {
    const size = withSum ? 36 : 34;
    const nb = x.length / 32;
    const raw = new Uint8Array(nb * size);
    (withSum ? quantizeQ8_1 : quantizeQ8_0)(x, raw, x.length);
    const a: Q8Activations = { d: new Float32Array(nb), q: new Int8Array(x.length), s: new Float32Array(nb) };
    const h = (o: number): number => t[(raw[o] as number) | ((raw[o + 1] as number) << 8)] as number;
    for (let b = 0; b < nb; b++) {
      a.d[b] = h(b * size);
      if (withSum) a.s[b] = h(b * size + 2);
      a.q.set(new Int8Array(raw.buffer, b * size + size - 32, 32), b * 32);
    }
    return { raw, a };
  }

  it('Q8_K (quantize_row_q8_K_ref, which the x86 build calls): d, codes and bsums bit for bit', () => {
    for (const seed of [1, 2, 3]) {
      const x = activations(N, seed);
      const want = ggmlQ8K(x).a;
      const got = quantizeActivationsQ8K(x);
      expect(Array.from(got.d)).toEqual(Array.from(want.d));
      expect(Array.from(got.q)).toEqual(Array.from(want.q));
      expect(Array.from(got.bsums)).toEqual(Array.from(want.bsums));
    }
  });

  it('Q8_0 and Q8_1 (quantize_row_q8_0 / _q8_1, AVX2): d, s and codes bit for bit', () => {
    for (const seed of [4, 5]) {
      const x = activations(N, seed);
      const got = quantizeActivationsQ8(x);
      const q80 = ggmlQ8(x, false).a;
      const q81 = ggmlQ8(x, true).a;
      expect(Array.from(got.d)).toEqual(Array.from(q80.d));
      expect(Array.from(got.q)).toEqual(Array.from(q80.q));
      expect(Array.from(got.d)).toEqual(Array.from(q81.d));
      expect(Array.from(got.q)).toEqual(Array.from(q81.q));
      expect(Array.from(got.s)).toEqual(Array.from(q81.s));
    }
  });

  const DOTS: readonly { dtype: DType; ggml: string; act: 'q8_0' | 'q8_1' | 'q8_K' }[] = [
    { dtype: 'Q8_0', ggml: 'ggml_vec_dot_q8_0_q8_0', act: 'q8_0' },
    { dtype: 'Q4_0', ggml: 'ggml_vec_dot_q4_0_q8_0', act: 'q8_0' },
    { dtype: 'Q5_0', ggml: 'ggml_vec_dot_q5_0_q8_0', act: 'q8_0' },
    { dtype: 'Q4_1', ggml: 'ggml_vec_dot_q4_1_q8_1', act: 'q8_1' },
    { dtype: 'Q5_1', ggml: 'ggml_vec_dot_q5_1_q8_1', act: 'q8_1' },
    { dtype: 'Q4_K', ggml: 'ggml_vec_dot_q4_K_q8_K', act: 'q8_K' },
    { dtype: 'Q6_K', ggml: 'ggml_vec_dot_q6_K_q8_K', act: 'q8_K' },
  ];
  for (const { dtype, ggml, act } of DOTS) {
    // ggml sums its per-block float terms in f32: the bound is relative to Σ|w·x| (the min terms of Q4_1, Q5_1
    // and Q4_K cancel against the scale terms, so the result itself can be far smaller than what was rounded).
    it(`${dtype}: the engine's dot equals ${ggml} on the same blocks (within 1e-6·Σ|w·x|)`, () => {
      const dot = vecDot(ggml);
      const r = rng(11);
      for (let row = 0; row < 8; row++) {
        const wv = Float32Array.from({ length: N }, () => (r() - 0.5) * (1 + row));
        const w = quantize(dtype, wv, {});
        const x = activations(N, 20 + row);
        const out = new Float32Array(1);
        let ours: number;
        if (act === 'q8_K') {
          const { raw, a } = ggmlQ8K(x);
          dot(N, out, 0, w, 0, raw, 0, 1);
          ours = dotQ8KActivations(dtype, w, 0, a, N);
        } else {
          const { raw, a } = ggmlQ8(x, act === 'q8_1');
          dot(N, out, 0, w, 0, raw, 0, 1);
          ours = dotQ8Activations(dtype, w, 0, a, N);
        }
        const theirs = out[0] as number;
        const dense = dequantize(dtype, w, N);
        let scale = 0;
        for (let j = 0; j < N; j++) scale += Math.abs((dense[j] as number) * (x[j] as number));
        expect(Math.abs(theirs)).toBeGreaterThan(1e-3);
        expect(Math.abs(ours - theirs), `row ${row}: ${ours} vs ${theirs}`).toBeLessThanOrEqual(1e-6 * scale);
      }
    });
  }
});
