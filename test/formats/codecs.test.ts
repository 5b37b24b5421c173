import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BufferByteSource } from '../../src/formats/byte-source.js';
import { bf16BitsToFp32, fp32ToBf16Bits } from '../../src/formats/codecs/bf16.js';
import { bitsToF32, f32ToBits, fmaF32 } from '../../src/formats/codecs/f32.js';
import { fp16BitsToFp32, fp32ToFp16Bits } from '../../src/formats/codecs/f16.js';
import { dequantize, dotRow, ggmlIdToDType, quantize, tensorByteLength, TYPE_INFO } from '../../src/formats/codecs/index.js';
import { readGguf, readTensorBytes, readTensorF32, type GgufFile } from '../../src/formats/gguf/reader.js';
import { DTYPES, type DType } from '../../src/formats/types.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/llamacpp/${name}`, import.meta.url));

function load(name: string): { src: BufferByteSource; file: GgufFile } {
  const src = new BufferByteSource(new Uint8Array(readFileSync(fixture(name))));
  return { src, file: readGguf(src) };
}

function seededNormals(n: number, seed: number, scale = 1): Float32Array {
  // xorshift32 + Box–Muller: deterministic, no dependency.
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}

describe('type table', () => {
  it('has the ggml ids and block geometry of formats.md §1.2–1.3', () => {
    expect(Object.fromEntries(DTYPES.map((d) => [d, TYPE_INFO[d]]))).toEqual({
      F32: { ggmlId: 0, blockSize: 1, typeSize: 4 },
      F16: { ggmlId: 1, blockSize: 1, typeSize: 2 },
      Q4_0: { ggmlId: 2, blockSize: 32, typeSize: 18 },
      Q4_1: { ggmlId: 3, blockSize: 32, typeSize: 20 },
      Q5_0: { ggmlId: 6, blockSize: 32, typeSize: 22 },
      Q5_1: { ggmlId: 7, blockSize: 32, typeSize: 24 },
      Q8_0: { ggmlId: 8, blockSize: 32, typeSize: 34 },
      Q4_K: { ggmlId: 12, blockSize: 256, typeSize: 144 },
      Q6_K: { ggmlId: 14, blockSize: 256, typeSize: 210 },
      BF16: { ggmlId: 30, blockSize: 1, typeSize: 2 },
    });
    for (const d of DTYPES) expect(ggmlIdToDType(TYPE_INFO[d].ggmlId)).toBe(d);
    expect(ggmlIdToDType(9)).toBeUndefined(); // Q8_1: never a stored type
    expect(ggmlIdToDType(4)).toBeUndefined(); // removed
  });

  it('tensorByteLength: whole blocks only', () => {
    expect(tensorByteLength('Q8_0', 64)).toBe(68);
    expect(tensorByteLength('Q4_0', 256 * 576)).toBe(8 * 576 * 18);
    expect(tensorByteLength('Q4_K', 576)).toBeUndefined();
    expect(tensorByteLength('Q8_0', 33)).toBeUndefined();
    expect(tensorByteLength('F32', 0)).toBe(0);
    expect(tensorByteLength('F16', -1)).toBeUndefined();
  });

  it('quantize throws a clear error for a partial block', () => {
    expect(() => quantize('Q8_0', new Float32Array(31))).toThrow(/whole number of 32-element blocks/);
  });
});

describe('fp16 (ggml_compute_fp32_to_fp16)', () => {
  const cases = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0, 0x0000],
    [-0, 0x8000],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00], // midpoint of 65504 and 65536: ties to even → overflows to Inf
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [NaN, 0x7e00],
    [1 + 2 ** -11, 0x3c00], // tie → even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
    [1 + 2 ** -11 + 2 ** -23, 0x3c01], // just above the tie
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24 → even (0)
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 ulps → even (2)
    [2 ** -25 + 2 ** -40, 0x0001],
    [1e-8, 0x0000],
    [-1e-8, 0x8000],
  ] as const;
  it.each(cases)('fp32 %d → 0x%s', (value, bits) => {
    expect(fp32ToFp16Bits(value).toString(16)).toBe(bits.toString(16));
  });

  it('fp16 → fp32 is exact, and every non-NaN fp16 survives fp16 → fp32 → fp16', () => {
    expect(fp16BitsToFp32(0x0001)).toBe(2 ** -24);
    expect(fp16BitsToFp32(0x3555)).toBe(0.333251953125);
    expect(fp16BitsToFp32(0xfc00)).toBe(-Infinity);
    expect(fp16BitsToFp32(0x7e00)).toBeNaN();
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (fp32ToFp16Bits(fp16BitsToFp32(h)) !== h) throw new Error(`round trip of 0x${h.toString(16)}`);
    }
  });

  /** Independent round-to-nearest-even: scale to the fp16 grid (exact: power-of-two scaling) and round. */
  function referenceFp16(x: number): number {
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const a = Math.abs(x);
    const rne = (q: number): number => {
      const f = Math.floor(q);
      const r = q - f;
      return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
    };
    if (a < 2 ** -14) return sign | rne(a / 2 ** -24);
    const e = ((f32ToBits(a) >>> 23) & 0xff) - 127;
    const n = rne(a / 2 ** (e - 10));
    const bits = ((e + 15) << 10) + (n - 1024);
    return sign | (bits >= 0x7c00 ? 0x7c00 : bits);
  }

  it('agrees with an independent RNE for random f32 bit patterns', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        const x = bitsToF32(bits);
        if (Number.isNaN(x)) return;
        expect(fp32ToFp16Bits(x)).toBe(Number.isFinite(x) ? referenceFp16(x) : x > 0 ? 0x7c00 : 0xfc00);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('bf16 (ggml_compute_fp32_to_bf16)', () => {
  const cases = [
    [0x3f800000, 0x3f80],
    [0x3f808000, 0x3f80], // tie → even (down)
    [0x3f818000, 0x3f82], // tie → even (up)
    [0x3f808001, 0x3f81],
    [0x7f7fffff, 0x7f80], // max f32 rounds to Inf
    [0x7f800000, 0x7f80],
    [0xff800000, 0xff80],
    [0x80000000, 0x8000],
    [0x00008000, 0x0000], // subnormal tie → even; subnormals are rounded, not flushed
    [0x00018000, 0x0002],
    [0x00000001, 0x0000],
    [0x7fc00000, 0x7fc0],
    [0x7f800001, 0x7fc0], // NaN made quiet with | 0x40
    [0xffc00000, 0xffc0],
  ] as const;
  it.each(cases)('fp32 bits 0x%s → 0x%s', (bits, out) => {
    expect(fp32ToBf16Bits(bitsToF32(bits)).toString(16)).toBe(out.toString(16));
  });

  it('bf16 → fp32 is bits << 16', () => {
    expect(bf16BitsToFp32(0x3f80)).toBe(1);
    expect(bf16BitsToFp32(0xc040)).toBe(-3);
    expect(bf16BitsToFp32(0x0001)).toBe(2 ** -133);
    const all = new Uint8Array(2 * 65536);
    for (let h = 0; h < 65536; h++) {
      all[2 * h] = h & 0xff;
      all[2 * h + 1] = h >>> 8;
    }
    const f = dequantize('BF16', all, 65536);
    for (let h = 0; h < 65536; h++) {
      if (f32ToBits(f[h] as number) !== h * 65536 && !Number.isNaN(f[h])) throw new Error(`0x${h.toString(16)}`);
    }
  });
});

describe('fmaF32 (single rounding)', () => {
  it('breaks an f64 tie on an f32 midpoint by the exact error', () => {
    // (1 + 2^-23)(2^-24 − 2^-47) = 2^-24 − 2^-70. Added to c = 1 + 2^-23 the exact sum lies just below the
    // f32 midpoint 1 + 3·2^-24; f64 rounds it onto the midpoint and a second rounding (ties to even) goes up.
    const a = 1 + 2 ** -23;
    const b = 2 ** -24 - 2 ** -47;
    const c = 1 + 2 ** -23;
    expect(Math.fround(a * b + c)).toBe(1 + 2 ** -22);
    expect(fmaF32(a, b, c)).toBe(1 + 2 ** -23);
    expect(fmaF32(-a, b, -c)).toBe(-(1 + 2 ** -23));
    expect(fmaF32(2, 3, 4)).toBe(10);
  });
});

describe('Q8_0 (quantize_row_q8_0_ref)', () => {
  it('golden block by hand: d = 127/127 = 1, roundf halves away from zero', () => {
    const x = new Float32Array(32);
    x.set([127, 62.5, -62.5, 0.5, -0.5, 1.5, 2.5, -2.5, 63.49, 100]);
    const expected = new Uint8Array(34);
    // fp16(1.0) = 0x3C00 (LE), then i8 quants: 62.5 → 63 and 2.5 → 3 (banker's rounding would give 62 and 2).
    expected.set([0x00, 0x3c, 127, 63, 0xc1 /* -63 */, 1, 0xff /* -1 */, 2, 3, 0xfd /* -3 */, 63, 100]);
    expect([...quantize('Q8_0', x)]).toEqual([...expected]);
    const back = dequantize('Q8_0', expected, 32);
    expect([...back.subarray(0, 10)]).toEqual([127, 63, -63, 1, -1, 2, 3, -3, 63, 100]);
  });

  it('an all-zero block stores d = 0 and zero quants', () => {
    expect([...quantize('Q8_0', new Float32Array(32))]).toEqual(new Array(34).fill(0));
  });

  it('quantizes with the f32 d but stores fp16(d)', () => {
    // amax = 127·(1 + 2^-12): d = 1 + 2^-12 exactly in f32, and fp16(d) rounds to 1.0.
    const x = new Float32Array(32);
    x[0] = 127 * (1 + 2 ** -12);
    const q = quantize('Q8_0', x);
    expect([q[0], q[1], q[2]]).toEqual([0x00, 0x3c, 127]);
    expect(dequantize('Q8_0', q, 32)[0]).toBe(127);
  });

  it('error ≤ d/2 + 127·|fp16(d) − d| per element', () => {
    const x = seededNormals(32 * 64, 7, 0.02);
    const y = dequantize('Q8_0', quantize('Q8_0', x), x.length);
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j] as number));
      const d = amax / 127;
      const bound = 0.5 * d * (1 + 1e-6) + 127 * d * 2 ** -11;
      for (let j = 0; j < 32; j++) expect(Math.abs((y[b * 32 + j] as number) - (x[b * 32 + j] as number))).toBeLessThanOrEqual(bound);
    }
  });
});

describe('Q4_0 (quantize_row_q4_0_ref)', () => {
  it('golden block by hand: max = −8 (first of equal |x| wins), d = 1, q = min(15, trunc(x + 8.5))', () => {
    const x = new Float32Array(32);
    // elements 0–15 → low nibbles
    x.set([-8, 7, 7.5, 0, -0.5, 0.5, -1.5, 2.25, 8, -7.9, 1.49], 0);
    // elements 16–31 → high nibbles
    x.set([-3, 3, -2.5, 4.5], 16);
    // q (low):  0 15 15 8 8 9 7 10 15 0 9 8 8 8 8 8   (7.5 and 8 clamp to 15; −0.5 → 8 and 0.5 → 9: ties go up)
    // q (high): 5 11  6 13 then 8 × 12
    const expected = [0x00, 0x3c, 0x50, 0xbf, 0x6f, 0xd8, 0x88, 0x89, 0x87, 0x8a, 0x8f, 0x80, 0x89, 0x88, 0x88, 0x88, 0x88, 0x88];
    expect([...quantize('Q4_0', x)]).toEqual(expected);
    const y = dequantize('Q4_0', new Uint8Array(expected), 32);
    expect([...y.subarray(0, 11)]).toEqual([-8, 7, 7, 0, 0, 1, -1, 2, 7, -8, 1]);
    expect([...y.subarray(16, 21)]).toEqual([-3, 3, -2, 5, 0]);
  });

  it('a positive max gives a negative d', () => {
    const x = new Float32Array(32);
    x[0] = 8;
    x[1] = -8;
    const q = quantize('Q4_0', x);
    expect([q[0], q[1]]).toEqual([0x00, 0xbc]); // fp16(−1)
    const y = dequantize('Q4_0', q, 32);
    expect([y[0], y[1], y[2]]).toEqual([8, -7, -0]);
  });

  it('error ≤ |d|·(1 + 2^-8) per element (one step at the clamped end)', () => {
    const x = seededNormals(32 * 64, 11, 0.02);
    const y = dequantize('Q4_0', quantize('Q4_0', x), x.length);
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j] as number));
      const d = amax / 8;
      for (let j = 0; j < 32; j++)
        expect(Math.abs((y[b * 32 + j] as number) - (x[b * 32 + j] as number))).toBeLessThanOrEqual(d * (1 + 2 ** -8));
    }
  });
});

describe('Q4_1 / Q5_0 / Q5_1 quantizers and dequantizers', () => {
  const cases = [
    ['Q4_1', 15, 'range'],
    ['Q5_0', 16, 'amax'],
    ['Q5_1', 31, 'range'],
  ] as const;
  it.each(cases)('%s: error within one quantization step', (dtype, levels, kind) => {
    const x = seededNormals(32 * 64, 13, 0.05);
    const q = quantize(dtype, x);
    expect(q.length).toBe(64 * TYPE_INFO[dtype].typeSize);
    const y = dequantize(dtype, q, x.length);
    for (let b = 0; b < 64; b++) {
      const blk = x.subarray(b * 32, b * 32 + 32);
      const min = Math.min(...blk);
      const max = Math.max(...blk);
      const amax = Math.max(-min, max);
      const step = kind === 'range' ? (max - min) / levels : amax / levels;
      // half a step from rounding, plus fp16 rounding of d and m; Q5_0 may lose a whole step at the clamped end.
      const bound = (kind === 'amax' ? 1 : 0.5) * step + 32 * step * 2 ** -11 + Math.abs(min) * 2 ** -11 + 1e-7;
      for (let j = 0; j < 32; j++) expect(Math.abs((y[b * 32 + j] as number) - (blk[j] as number))).toBeLessThanOrEqual(bound);
    }
  });

  it('Q5_0 golden block: the 5th bits land in qh', () => {
    const x = new Float32Array(32);
    x[0] = -16; // d = 1
    x[1] = 15; // q = 31 → nibble 0xF, qh bit 1
    x[16] = 0; // q = 16 → nibble 0, qh bit 16
    x[17] = -1; // q = 15 → nibble 0xF, no qh bit
    const q = quantize('Q5_0', x);
    expect([q[0], q[1]]).toEqual([0x00, 0x3c]);
    // qh: every element except 0 and 17 has q ≥ 16 (zeros → 16), element 1 → 31.
    const qh = (q[2] as number) | ((q[3] as number) << 8) | ((q[4] as number) << 16) | ((q[5] as number) << 24);
    expect((qh >>> 0).toString(2).padStart(32, '0')).toBe('11111111111111011111111111111110');
    expect(q[6]).toBe(0x00 | (0x0 << 4)); // element 0 → q 0, element 16 → q 16 (nibble 0)
    expect(q[7]).toBe(0x0f | (0xf << 4)); // element 1 → 31, element 17 → 15
    const y = dequantize('Q5_0', q, 32);
    expect([y[0], y[1], y[16], y[17]]).toEqual([-16, 15, 0, -1]);
  });
});

describe('K-quant dequantizers (hand-built blocks)', () => {
  it('Q4_K: 6-bit scale/min pairs for j < 4 and j ≥ 4 (get_scale_min_k4)', () => {
    const blk = new Uint8Array(144);
    blk.set([0x00, 0x3c, 0x00, 0x38]); // d = 1, dmin = 0.5
    const sc = [1, 2, 3, 4, 5, 6, 7, 63];
    const mn = [0, 1, 2, 3, 4, 5, 6, 62];
    const s = blk.subarray(4, 16);
    for (let j = 0; j < 4; j++) {
      s[j] = (sc[j] as number) | (((sc[j + 4] as number) >> 4) << 6);
      s[j + 4] = (mn[j] as number) | (((mn[j + 4] as number) >> 4) << 6);
      s[j + 8] = ((sc[j + 4] as number) & 0xf) | (((mn[j + 4] as number) & 0xf) << 4);
    }
    for (let i = 0; i < 128; i++) blk[16 + i] = (i % 16) | ((15 - (i % 16)) << 4);
    const y = dequantize('Q4_K', blk, 256);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const qi = 32 * c + l;
        expect(y[64 * c + l]).toBe((sc[2 * c] as number) * (qi % 16) - 0.5 * (mn[2 * c] as number));
        expect(y[64 * c + 32 + l]).toBe((sc[2 * c + 1] as number) * (15 - (qi % 16)) - 0.5 * (mn[2 * c + 1] as number));
      }
    }
  });

  it('Q6_K: ql nibbles + 2 qh bits − 32, times d·scale', () => {
    const blk = new Uint8Array(210);
    const q = Array.from({ length: 256 }, (_, i) => (i * 7) % 64); // 6-bit values
    const scales = Array.from({ length: 16 }, (_, i) => i - 8);
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const v = (k: number): number => q[128 * half + l + 32 * k] as number;
        blk[64 * half + l] = (v(0) & 0xf) | ((v(2) & 0xf) << 4);
        blk[64 * half + l + 32] = (v(1) & 0xf) | ((v(3) & 0xf) << 4);
        blk[128 + 32 * half + l] = (v(0) >> 4) | ((v(1) >> 4) << 2) | ((v(2) >> 4) << 4) | ((v(3) >> 4) << 6);
      }
    }
    scales.forEach((s, i) => (blk[192 + i] = s & 0xff));
    blk[208] = 0x00;
    blk[209] = 0x40; // d = 2
    const y = dequantize('Q6_K', blk, 256);
    for (let i = 0; i < 256; i++) {
      const scale = scales[Math.floor(i / 16)] as number;
      expect(y[i]).toBe(2 * scale * ((q[i] as number) - 32));
    }
  });
});

describe('dotRow', () => {
  const types: DType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1'];
  it.each(types)('%s: equals dequantize-then-dot, at aligned and unaligned offsets', (dtype) => {
    const n = 128;
    const w = seededNormals(n, 3);
    const x = seededNormals(n, 5);
    const row = quantize(dtype, w);
    const ref = dequantize(dtype, row, n).reduce((s, v, i) => s + v * (x[i] as number), 0);
    for (const shift of [0, 1, 3]) {
      const buf = new Uint8Array(shift + row.length + 5);
      buf.set(row, shift);
      expect(dotRow(dtype, buf, shift, x, n)).toBeCloseTo(ref, 9);
    }
    expect(() => dotRow(dtype, row, 1, x, n)).toThrow(RangeError);
  });

  it('F32 through a view with an unaligned byteOffset', () => {
    const w = seededNormals(64, 9);
    const x = seededNormals(64, 10);
    const bytes = new Uint8Array(3 + 256);
    bytes.set(new Uint8Array(w.buffer), 3);
    const view = bytes.subarray(1);
    const ref = w.reduce((s, v, i) => s + v * (x[i] as number), 0);
    expect(dotRow('F32', view, 2, x, 64)).toBeCloseTo(ref, 9);
  });
});

describe('against llama.cpp (test/fixtures/llamacpp)', () => {
  const base = load('tiny-llama-f32.gguf');
  const matrices = base.file.tensors.filter((t) => t.shape.length === 2);
  const golden = [
    ['Q8_0', 'tiny-llama-q8_0.gguf'],
    ['Q4_0', 'tiny-llama-q4_0.gguf'],
    ['F16', 'tiny-llama-f16.gguf'],
    ['BF16', 'tiny-llama-bf16.gguf'],
  ] as const;

  it('has 16 2-D tensors to compare', () => {
    expect(matrices).toHaveLength(16);
  });

  it.each(golden)('our %s quantizer reproduces llama-quantize byte for byte (%s)', (dtype, file) => {
    const q = load(file);
    expect(q.file.issues).toEqual([]);
    const { typeSize, blockSize } = TYPE_INFO[dtype];
    let blocks = 0;
    const differing: string[] = [];
    for (const t of matrices) {
      const theirsEntry = q.file.tensors.find((e) => e.name === t.name);
      expect(theirsEntry?.dtype).toBe(dtype);
      if (theirsEntry === undefined) continue;
      const mine = quantize(dtype, readTensorF32(base.src, t));
      const theirs = readTensorBytes(q.src, theirsEntry);
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
    expect(blocks).toBe(dtype === 'Q8_0' || dtype === 'Q4_0' ? 41_984 : 1_343_488);
    expect(differing, `${differing.length} of ${blocks} blocks differ`).toEqual([]);
  });

  it.each([
    ['Q8_0', 'tiny-llama-q8_0.gguf', 0.6],
    ['Q4_0', 'tiny-llama-q4_0.gguf', 1.01],
  ] as const)('dequantized %s tensors stay within their block error of the f32 source', (dtype, file, stepFraction) => {
    const q = load(file);
    for (const t of matrices) {
      const e = q.file.tensors.find((x) => x.name === t.name);
      if (e === undefined) throw new Error(t.name);
      const src = readTensorF32(base.src, t);
      const got = readTensorF32(q.src, e);
      const levels = dtype === 'Q8_0' ? 127 : 8;
      for (let b = 0; b < src.length / 32; b++) {
        const blk = src.subarray(b * 32, b * 32 + 32);
        const amax = Math.max(...blk.map(Math.abs));
        const d = Math.fround(amax / levels);
        // Rounding error plus the cost of storing d as fp16 — which is everything in the ~1e-30 row, where fp16(d) underflows to 0.
        const bound = stepFraction * d + levels * Math.abs(fp16BitsToFp32(fp32ToFp16Bits(d)) - d);
        for (let j = 0; j < 32; j++) {
          const err = Math.abs((got[b * 32 + j] as number) - (blk[j] as number));
          if (err > bound) throw new Error(`${t.name}[${b * 32 + j}]: |${got[b * 32 + j]} − ${blk[j]}| > ${bound}`);
        }
      }
    }
  });
});
