import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BufferByteSource } from '../../src/formats/byte-source.js';
import { dequantize, quantize, TYPE_INFO } from '../../src/formats/codecs/index.js';
import { nearestInt, quantizeQ4_K, quantizeQ6_K } from '../../src/formats/codecs/k-quants.js';
import { readGguf, readTensorBytes, readTensorF32, type GgufFile } from '../../src/formats/gguf/reader.js';
import { pairMetrics } from '../../src/formats/stats.js';
import type { DType } from '../../src/formats/types.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/llamacpp/${name}`, import.meta.url));

function load(name: string): { src: BufferByteSource; file: GgufFile } {
  const src = new BufferByteSource(new Uint8Array(readFileSync(fixture(name))));
  return { src, file: readGguf(src) };
}

/** xorshift32 uniform + Box–Muller normals: deterministic, no dependency. */
function rng(seed: number): { u: () => number; normal: () => number } {
  let s = seed >>> 0 || 1;
  const u = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 2 ** 32;
  };
  return { u, normal: () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) };
}

/**
 * 64 super-blocks of awkward inputs: zeros, constants, ±30σ outliers, ~1e-30 (below GROUP_MAX_EPS),
 * f32 subnormals, one-signed ranges, rounding ties, ±1 runs, 1e19-scaled normals (x² overflows to Inf,
 * so the C code runs through Inf/NaN), sub-blocks 10^-4…10^3 apart, sparse, a single non-zero, ~1e-15,
 * half zeros, small integers, then normals at random scales 1e-6…1e3.
 */
function edgeBlocks(): Float32Array {
  const { u, normal } = rng(0x9e3779b9);
  const gens: ((i: number) => number)[] = [
    () => 0,
    () => 0.5,
    () => -0.25,
    () => normal(),
    () => 0.02 * normal(),
    (i) => (i === 77 ? 30 : normal()),
    (i) => (i === 200 ? -30 : normal()),
    () => 1e-30 * normal(),
    () => 1e-40 * normal(),
    () => 1 + u(),
    () => -1 - u(),
    (i) => (i - 128) / 16,
    (i) => ((i >> 3) % 2 ? 1 : -1),
    () => 1e19 * normal(),
    (i) => 10 ** ((i >> 5) - 4) * normal(),
    () => (u() < 0.9 ? 0 : normal()),
    (i) => (i === 13 ? 0.7 : 0),
    () => 1e-15 * normal(),
    (i) => (i < 128 ? 0 : normal()),
    (i) => (i % 16) - 8,
  ];
  const out = new Float32Array(64 * 256);
  for (let b = 0; b < 64; b++) {
    const g = gens[b] ?? ((): number => 10 ** (9 * u() - 6) * normal());
    for (let i = 0; i < 256; i++) out[b * 256 + i] = g(i);
  }
  return out;
}

/**
 * SHA-256 of ggml's own `quantize_row_q4_K_ref` / `quantize_row_q6_K_ref` output for edgeBlocks():
 * the functions copied verbatim from ggml/src/ggml-quants.c of the llama.cpp release bundled in
 * node-llama-cpp 3.21.1, compiled with gcc 12.2 `-std=gnu11 -O2 -DNDEBUG` (as ggml-base is: no
 * -march, so no FMA contraction; -O0 gives the same bytes). The same build reproduces every block of
 * tiny-llama-q4_k.gguf, which is how the fixture's provenance was confirmed.
 */
const C_REFERENCE_SHA256 = {
  Q4_K: 'b937a144cb575db9e5cce4c0498ed5c8b4828ace099ca6ded98bcab75f2f83c5',
  Q6_K: '4f642146e34e17407ed031926647f939bfda71618667229cdf5fc521cb954eaa',
} as const;

describe('nearestInt (ggml nearest_int)', () => {
  it.each([
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, 0],
    [-1.5, -2],
    [-2.5, -2],
    [0.49999997, 0],
    [7.5, 8],
    [4194303, 4194303],
    [-4194303, -4194303],
  ])('%d → %d (round half to even)', (x, n) => {
    expect(nearestInt(Math.fround(x))).toBe(n);
  });

  it('outside |x| ≤ 4194303 it reproduces the bit arithmetic of a release build (the assert is compiled out)', () => {
    // 4194304 + 12582912 = 2^24: mantissa bits 0 → −0x400000.
    expect(nearestInt(4194304)).toBe(-4194304);
    expect(nearestInt(Infinity)).toBe(-4194304);
    expect(nearestInt(-Infinity)).toBe(-4194304);
    expect(nearestInt(NaN)).toBe(0); // quiet NaN mantissa 0x400000
  });
});

describe('Q4_K / Q6_K reference quantizers', () => {
  it('quantize() routes Q4_K and Q6_K to them', () => {
    const x = edgeBlocks().subarray(3 * 256, 5 * 256);
    expect(quantize('Q4_K', x)).toEqual(quantizeQ4_K(x));
    expect(quantize('Q6_K', x)).toEqual(quantizeQ6_K(x));
    expect(() => quantize('Q4_K', new Float32Array(255))).toThrow(/whole number of 256-element blocks/);
  });

  it('an all-zero super-block is all zero bytes', () => {
    expect(quantizeQ4_K(new Float32Array(256)).every((b) => b === 0)).toBe(true);
    expect(quantizeQ6_K(new Float32Array(256)).every((b) => b === 0)).toBe(true);
  });

  it.each(['Q4_K', 'Q6_K'] as const)('%s: 64 edge-case super-blocks match ggml compiled from source, bit for bit', (dtype) => {
    const x = edgeBlocks();
    const bytes = dtype === 'Q4_K' ? quantizeQ4_K(x) : quantizeQ6_K(x);
    expect(bytes.length).toBe(64 * TYPE_INFO[dtype].typeSize);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(C_REFERENCE_SHA256[dtype]);
  });

  // Measured 22.9 dB (Q4_K) and 35.0 dB (Q6_K): ~6 dB per bit of a 4- and 6-bit code with its scale overhead.
  // A band, not a floor: a much better SQNR would mean a test that no longer quantizes.
  it.each([
    ['Q4_K', 21, 25],
    ['Q6_K', 33, 37],
  ] as const)('%s: SQNR of seeded normals is in its expected band (%d–%d dB)', (dtype, lo, hi) => {
    const { normal } = rng(42);
    const x = Float32Array.from({ length: 256 * 64 }, () => 0.05 * normal());
    const y = dequantize(dtype, quantize(dtype, x), x.length);
    const { sqnrDb } = pairMetrics(x, y);
    expect(sqnrDb).toBeGreaterThan(lo);
    expect(sqnrDb).toBeLessThan(hi);
  });

  it('property: any finite input gives whole blocks that decode to finite values near the input', () => {
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 256, maxLength: 256, noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }),
        (values) => {
          for (const dtype of ['Q4_K', 'Q6_K'] as const) {
            const q = quantize(dtype, values);
            expect(q.length).toBe(TYPE_INFO[dtype].typeSize);
            const y = dequantize(dtype, q, 256);
            let amax = 0;
            for (const v of values) amax = Math.max(amax, Math.abs(v));
            // A coarse bound that still catches layout bugs (swapped nibbles, wrong sub-block): every
            // element within half the super-block's range plus fp16 slack.
            for (let i = 0; i < 256; i++) {
              const yi = y[i] as number;
              expect(Number.isFinite(yi)).toBe(true);
              expect(Math.abs(yi - (values[i] as number))).toBeLessThanOrEqual(amax * 0.5 + 1e-6);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('byte-exact against llama-quantize --pure (test/fixtures/llamacpp)', () => {
  const base = load('tiny-llama-f32.gguf');
  const matrices = base.file.tensors.filter((t) => t.shape.length === 2);
  const golden = [
    ['Q4_K', 'tiny-llama-q4_k.gguf', 5_248],
    ['Q6_K', 'tiny-llama-q6_k.gguf', 5_248],
    ['Q4_1', 'tiny-llama-q4_1.gguf', 41_984],
    ['Q5_0', 'tiny-llama-q5_0.gguf', 41_984],
    ['Q5_1', 'tiny-llama-q5_1.gguf', 41_984],
  ] as const satisfies readonly (readonly [DType, string, number])[];

  it('has the 16 2-D tensors (including the edge-case rows 0–5) to compare', () => {
    expect(matrices).toHaveLength(16);
  });

  it.each(golden)('our %s quantizer reproduces %s block for block', (dtype, file, expectedBlocks) => {
    const q = load(file);
    expect(q.file.issues).toEqual([]);
    const { typeSize, blockSize } = TYPE_INFO[dtype];
    let blocks = 0;
    const differing: string[] = [];
    for (const t of matrices) {
      const entry = q.file.tensors.find((e) => e.name === t.name);
      expect(entry?.dtype, t.name).toBe(dtype);
      if (entry === undefined) continue;
      const mine = quantize(dtype, readTensorF32(base.src, t));
      const theirs = readTensorBytes(q.src, entry);
      expect(mine.length).toBe(theirs.length);
      for (let b = 0; b < theirs.length / typeSize; b++) {
        blocks++;
        for (let k = b * typeSize; k < (b + 1) * typeSize; k++) {
          if (mine[k] !== theirs[k]) {
            differing.push(`${t.name} block ${b} (row ${Math.floor((b * blockSize) / (t.shape[1] as number))})`);
            break;
          }
        }
      }
    }
    expect(blocks).toBe(expectedBlocks);
    expect(differing, `${differing.length} of ${blocks} blocks differ`).toEqual([]);
  });
});
