import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/formats/apr/crc32.js';
import { APR_DTYPE_CODES, aprRequiredBytes, compareCodePoints, type AprDType } from '../../src/formats/apr/format.js';
import { readApr, readAprTensorF32, type AprFile } from '../../src/formats/apr/reader.js';
import { aprTensorFromF32, encodeApr, writeAprFile, type AprTensorIn } from '../../src/formats/apr/writer.js';
import { BufferByteSource } from '../../src/formats/byte-source.js';
import { dequantizeAprQ4, dequantizeAprQ8, quantizeAprQ4, quantizeAprQ8 } from '../../src/formats/codecs/apr.js';
import { dequantize, dotRow, quantize, tensorByteLength, TYPE_INFO } from '../../src/formats/codecs/index.js';
import { TensorReadError } from '../../src/formats/gguf/reader.js';
import { readModelFile } from '../../src/formats/read-model.js';
import type { FileCode } from '../../src/formats/types.js';

const read = (bytes: Uint8Array): AprFile => readApr(new BufferByteSource(bytes));
const codes = (f: AprFile): FileCode[] => f.issues.map((i) => i.code);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const f32s = (...v: number[]): Float32Array => Float32Array.from(v);

const tmp = mkdtempSync(join(tmpdir(), 'tmgt-apr-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Recompute both CRCs after a deliberate edit, so only the edit is under test. */
function reseal(bytes: Uint8Array, { header = true, footer = true } = {}): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  if (header) dv.setUint32(40, crc32(out.subarray(44, 64), crc32(out.subarray(0, 40))), true);
  if (footer) dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

interface RawEntry {
  name: string | Uint8Array;
  dtype: number;
  dims: bigint[];
  offset: bigint;
  size: bigint;
}

/** Hermetic builder for files the writer would never produce: entries as given (unsorted, bad codes, …), CRCs sealed. */
function rawApr(opts: {
  entries: RawEntry[];
  data?: Uint8Array;
  metadata?: string;
  flags?: number;
  tensorCount?: number;
  version?: [number, number];
}): Uint8Array {
  const meta = new TextEncoder().encode(opts.metadata ?? '{}');
  const index: number[] = [];
  for (const e of opts.entries) {
    const name = typeof e.name === 'string' ? new TextEncoder().encode(e.name) : e.name;
    const b = new Uint8Array(2 + name.length + 2 + 8 * e.dims.length + 16);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, name.length, true);
    b.set(name, 2);
    let at = 2 + name.length;
    b[at++] = e.dtype;
    b[at++] = e.dims.length;
    for (const d of e.dims) {
      dv.setBigUint64(at, d, true);
      at += 8;
    }
    dv.setBigUint64(at, e.offset, true);
    dv.setBigUint64(at + 8, e.size, true);
    index.push(...b);
  }
  const pad = (n: number): number => n + ((64 - (n % 64)) % 64);
  const data = opts.data ?? new Uint8Array(0);
  const indexAt = 64 + pad(meta.length);
  const dataAt = indexAt + pad(index.length);
  const out = new Uint8Array(dataAt + pad(data.length) + 4);
  const dv = new DataView(out.buffer);
  out.set([0x41, 0x50, 0x52, 0, ...(opts.version ?? [2, 0])]);
  dv.setUint16(6, opts.flags ?? 0x400, true);
  dv.setUint32(8, opts.tensorCount ?? opts.entries.length, true);
  dv.setBigUint64(12, 64n, true);
  dv.setUint32(20, meta.length, true);
  dv.setBigUint64(24, BigInt(indexAt), true);
  dv.setBigUint64(32, BigInt(dataAt), true);
  out.set(meta, 64);
  out.set(index, indexAt);
  out.set(data, dataAt);
  return reseal(out);
}

describe('CRC-32', () => {
  it('is the IEEE CRC-32: check value, empty input, chaining, and zlib on random data', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const a = new TextEncoder().encode('1234');
    const b = new TextEncoder().encode('56789');
    expect(crc32(b, crc32(a))).toBe(0xcbf43926);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(crc32(bytes)).toBe(zlibCrc32(bytes));
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});

describe('golden file', () => {
  // Checked by hand against formats.md §2, CRCs from Python's zlib.crc32.
  const file = encodeApr({
    metadata: '{"model_type":"t"}',
    tensors: [{ name: 'w', shape: [2], dtype: 'F32', data: quantize('F32', f32s(1, -2)) }],
  });

  it('header bytes', () => {
    expect(file.length).toBe(260);
    expect(hex(file.subarray(0, 64))).toBe(
      [
        '41505200', // "APR\0"
        '0200', // version 2.0
        '0004', // flags: LAYOUT_ROW_MAJOR 0x0400
        '01000000', // tensor_count 1
        '4000000000000000', // metadata_offset 64 (unaligned u64 at 12)
        '12000000', // metadata_size 18
        '8000000000000000', // tensor_index_offset 128
        'c000000000000000', // data_offset 192
        'd9bd3a52', // header CRC-32 0x523abdd9
        '00'.repeat(20), // reserved
      ].join(''),
    );
  });

  it('metadata, index, data and footer', () => {
    expect(new TextDecoder().decode(file.subarray(64, 82))).toBe('{"model_type":"t"}');
    expect(file.subarray(82, 128).every((b) => b === 0)).toBe(true);
    expect(hex(file.subarray(128, 157))).toBe('0100' + '77' + '00' + '01' + '0200000000000000' + '0000000000000000' + '0800000000000000');
    expect(file.subarray(157, 192).every((b) => b === 0)).toBe(true);
    expect(hex(file.subarray(192, 200))).toBe('0000803f000000c0');
    expect(file.subarray(200, 256).every((b) => b === 0)).toBe(true);
    expect(hex(file.subarray(256))).toBe('abeb1501'); // footer CRC-32 0x0115ebab
  });

  it('reads back', () => {
    const f = read(file);
    expect(f.issues).toEqual([]);
    expect(f.header).toMatchObject({
      version: [2, 0],
      flags: 0x400,
      tensor_count: 1,
      metadata_offset: 64n,
      metadata_size: 18,
      tensor_index_offset: 128n,
      data_offset: 192n,
      checksum: 0x523abdd9,
    });
    expect(f.dataOffset).toBe(192);
    expect(f.tensors).toEqual([{ name: 'w', shape: [2], dtype: 'F32', rawType: 0, offset: 192, byteLength: 8, spanBytes: 8 }]);
    expect([...readAprTensorF32(new BufferByteSource(file), f.tensors[0]!)]).toEqual([1, -2]);
    expect(Object.fromEntries(f.metadata)).toEqual({ model_type: 't' });
  });
});

describe('APR Q8 / Q4 codecs (aprender add_q8_tensor / add_q4_tensor)', () => {
  it('Q8: [f32 scale][i8 × N], round halves away from zero, clamp ±127', () => {
    // max|x| = 127 makes the scale exactly 1, so the quotients are the inputs.
    const q = quantizeAprQ8(f32s(127, 2.5, -2.5, 0.5, -0.5, -126.5, 1.49));
    expect(q.length).toBe(4 + 7);
    expect(new DataView(q.buffer).getFloat32(0, true)).toBe(1);
    expect([...new Int8Array(q.buffer, 4)]).toEqual([127, 3, -3, 1, -1, -127, 1]);
    expect([...dequantizeAprQ8(q, 7)]).toEqual([127, 3, -3, 1, -1, -127, 1]);
  });

  it('Q8: all-zero → scale 1.0; NaN ignored by the max and coded 0; empty → 0 bytes', () => {
    const z = quantizeAprQ8(new Float32Array(5));
    expect(new DataView(z.buffer).getFloat32(0, true)).toBe(1);
    expect([...z.subarray(4)]).toEqual([0, 0, 0, 0, 0]);
    const n = quantizeAprQ8(f32s(NaN, 254));
    expect(new DataView(n.buffer).getFloat32(0, true)).toBe(2);
    expect([...new Int8Array(n.buffer, 4)]).toEqual([0, 127]);
    expect(quantizeAprQ8(new Float32Array(0)).length).toBe(0);
    expect(tensorByteLength('APR_Q8', 0)).toBe(0);
    expect(tensorByteLength('APR_Q8', 5)).toBe(9);
  });

  it('Q8: the scale is max|x|/127 in f32 and q uses f32 division', () => {
    const x = f32s(1, -0.5, 0.25, 1 / 3);
    const q = quantizeAprQ8(x);
    const scale = Math.fround(1 / 127);
    expect(new DataView(q.buffer).getFloat32(0, true)).toBe(scale);
    const expected = [...x].map((v) => {
      const r = Math.fround(v / scale);
      return Math.max(-127, Math.min(127, r < 0 ? -Math.round(-r) : Math.round(r)));
    });
    expect([...new Int8Array(q.buffer, 4)]).toEqual(expected);
  });

  it('Q4: f16 scale, adjacent elements share a byte (even → low nibble), last block zero-padded', () => {
    const x = new Float32Array(33);
    x.set([7, -7, 2.5, -2.5, 0.5, -0.5]);
    const q = quantizeAprQ4(x);
    expect(q.length).toBe(36);
    expect(tensorByteLength('APR_Q4', 33)).toBe(36);
    expect(hex(q.subarray(0, 2))).toBe('003c'); // f16 1.0 (max 7 / 7)
    // q = 7,-7 → nibbles 15,1; 3,-3 → 11,5; 1,-1 → 9,7; zeros → 8,8
    expect(hex(q.subarray(2, 18))).toBe('1f' + '5b' + '79' + '88'.repeat(13));
    // second block: one zero element → scale 1.0, nibble 8 low, the padding stays 0
    expect(hex(q.subarray(18))).toBe('003c' + '08' + '00'.repeat(15));
    expect([...dequantizeAprQ4(q, 33)]).toEqual([7, -7, 3, -3, 1, -1, ...new Array(27).fill(0)]);
  });

  it('Q4: NaN, Inf and subnormal f16 scales decode as 0; the smallest normal does not', () => {
    const block = (scaleBits: number): Uint8Array => {
      const b = new Uint8Array(18).fill(0xff); // every nibble 15 → q = 7
      b[0] = scaleBits & 0xff;
      b[1] = scaleBits >> 8;
      return b;
    };
    for (const bits of [0x7c00, 0xfc00, 0x7e00, 0x0001, 0x03ff, 0x0000])
      expect([...dequantizeAprQ4(block(bits), 2)].map(Math.abs)).toEqual([0, 0]);
    expect([...dequantizeAprQ4(block(0x0400), 2)]).toEqual([7 * 2 ** -14, 7 * 2 ** -14]);
    expect([...dequantizeAprQ4(block(0xbc00), 1)]).toEqual([-7]);
  });

  it('density check: ≥1024 elements with >99% zero codes throw like aprender panics, unless disabled', () => {
    const zeros = new Float32Array(1024);
    expect(() => quantizeAprQ8(zeros)).toThrow(/density violation: 100\.0% zeros/);
    expect(() => quantizeAprQ4(zeros)).toThrow(/density violation/);
    expect(quantizeAprQ8(zeros, { checkDensity: false }).length).toBe(1028);
    const mostly = new Float32Array(1024);
    mostly.fill(1, 0, 24); // 97.7% zeros: accepted
    expect(quantizeAprQ8(mostly).length).toBe(1028);
    expect(quantizeAprQ8(new Float32Array(1023)).length).toBe(1027); // below 1024: never checked
  });

  it('round trip error ≤ half a step (property)', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 200, noNaN: true, noDefaultInfinity: true, min: -1000, max: 1000 }), (x) => {
        const n = x.length;
        const q8 = dequantizeAprQ8(quantizeAprQ8(x), n);
        const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const s8 = amax === 0 ? 1 : Math.fround(amax / 127);
        // (+2^-100: below max|x| ≈ 127·2^-149 the f32 scale underflows to 0 and aprender decodes zeros)
        for (let i = 0; i < n; i++)
          expect(Math.abs((q8[i] as number) - (x[i] as number))).toBeLessThanOrEqual(s8 * 0.5 + 1e-6 * amax + 2 ** -100);
        const q4 = dequantizeAprQ4(quantizeAprQ4(x, { checkDensity: false }), n);
        for (let b = 0; b < n; b += 32) {
          const blk = x.subarray(b, b + 32);
          const bmax = blk.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          // half a step plus the f16 rounding of the scale (≤ 2^-11 relative, times |q| ≤ 7)
          const tol = bmax / 14 + (bmax / 7) * 7 * 2 ** -11 + 2 ** -14 * 8;
          for (let i = 0; i < blk.length; i++) expect(Math.abs((q4[b + i] as number) - (blk[i] as number))).toBeLessThanOrEqual(tol);
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('quantize()/dequantize() dispatch; dotRow refuses whole-tensor encodings', () => {
    const x = f32s(1, 2, 3);
    expect(quantize('APR_Q8', x)).toEqual(quantizeAprQ8(x));
    expect([...dequantize('APR_Q4', quantizeAprQ4(x), 3)]).toEqual([...dequantizeAprQ4(quantizeAprQ4(x), 3)]);
    expect(TYPE_INFO.APR_Q8.isWholeTensor).toBe(true);
    expect(() => dotRow('APR_Q8', quantizeAprQ8(x), 0, x, 3)).toThrow(/whole tensor/);
    expect(() => dequantize('APR_Q8', new Uint8Array(5), 3)).toThrow(/need 7 bytes/);
  });
});

describe('write → read round trips', () => {
  const values = (n: number, seed: number): Float32Array =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * (1 + (i % 5)));
  const padRows = (x: Float32Array, rows: number, cols: number): Float32Array => {
    const bpr = Math.ceil(cols / 256) * 256;
    const out = new Float32Array(rows * bpr);
    for (let r = 0; r < rows; r++) out.set(x.subarray(r * cols, (r + 1) * cols), r * bpr);
    return out;
  };

  function allDtypes(): { tensors: AprTensorIn[]; expected: Record<string, Float32Array> } {
    const expected: Record<string, Float32Array> = {};
    const tensors: AprTensorIn[] = [];
    const add = (t: AprTensorIn, decoded: Float32Array): void => {
      tensors.push(t);
      expected[t.name] = decoded;
    };
    const x = values(48, 1);
    add(aprTensorFromF32('f32', [6, 8], x, 'F32'), x);
    add(aprTensorFromF32('f16', [48], x, 'F16'), dequantize('F16', quantize('F16', x), 48));
    add(aprTensorFromF32('bf16', [2, 3, 8], x, 'BF16'), dequantize('BF16', quantize('BF16', x), 48));
    add(aprTensorFromF32('f64', [48], x, 'F64'), x);
    const q8 = values(1030, 2);
    add(aprTensorFromF32('q8', [10, 103], q8, 'APR_Q8'), dequantizeAprQ8(quantizeAprQ8(q8), 1030));
    const q4 = values(77, 3);
    add(aprTensorFromF32('q4', [7, 11], q4, 'APR_Q4'), dequantizeAprQ4(quantizeAprQ4(q4), 77));
    const ints = [-3, 0, 7, 100];
    add({ name: 'i8', shape: [4], dtype: 'I8', data: new Uint8Array(Int8Array.from(ints).buffer) }, f32s(...ints));
    add({ name: 'u8', shape: [4], dtype: 'U8', data: Uint8Array.from([0, 1, 200, 255]) }, f32s(0, 1, 200, 255));
    add(
      { name: 'i32', shape: [2, 2], dtype: 'I32', data: new Uint8Array(Int32Array.from([-70000, 1, 2, 2 ** 31 - 1]).buffer) },
      f32s(-70000, 1, 2, 2 ** 31 - 1),
    );
    add(
      { name: 'i64', shape: [3], dtype: 'I64', data: new Uint8Array(BigInt64Array.from([-5n, 0n, 1n << 40n]).buffer) },
      f32s(-5, 0, 2 ** 40),
    );
    // K-quants: rows of 300 are padded to 512 (2 super-blocks each), as quantize_q4_k_matrix does.
    const k = values(600, 4);
    const q4kData = quantize('Q4_K', padRows(k, 2, 300));
    add({ name: 'q4k', shape: [2, 300], dtype: 'Q4_K', data: q4kData }, unpad(dequantize('Q4_K', q4kData, 1024), 2, 300));
    const q6kData = quantize('Q6_K', padRows(k, 2, 300));
    add({ name: 'q6k', shape: [2, 300], dtype: 'Q6_K', data: q6kData }, unpad(dequantize('Q6_K', q6kData, 1024), 2, 300));
    add({ name: 'scalar', shape: [], dtype: 'F32', data: quantize('F32', f32s(42)) }, f32s(42));
    add({ name: 'empty', shape: [0, 4], dtype: 'APR_Q8', data: new Uint8Array(0) }, new Float32Array(0));
    return { tensors, expected };
  }
  function unpad(x: Float32Array, rows: number, cols: number): Float32Array {
    const bpr = Math.ceil(cols / 256) * 256;
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) out.set(x.subarray(r * bpr, r * bpr + cols), r * cols);
    return out;
  }

  it('every dtype: no issues, sorted index, sizes, 64-byte alignment, values', () => {
    const { tensors, expected } = allDtypes();
    const metadata = {
      model_type: 'llama',
      architecture: 'llama',
      hidden_size: 64,
      rope_theta: 10000,
      name: null,
      tokenizer: { vocabulary: ['a', 'b'] },
      'tokenizer.merges': ['a b'],
      tied_embeddings: true,
    };
    const bytes = encodeApr({ metadata, tensors });
    const src = new BufferByteSource(bytes);
    const f = readApr(src);
    expect(f.issues).toEqual([]);
    const names = tensors.map((t) => t.name).sort(compareCodePoints);
    expect(f.tensors.map((t) => t.name)).toEqual(names);
    for (const t of f.tensors) {
      const given = tensors.find((g) => g.name === t.name)!;
      expect(t.dtype).toBe(given.dtype);
      expect(t.rawType).toBe(APR_DTYPE_CODES[given.dtype]);
      expect(t.shape).toEqual(given.shape);
      expect(t.spanBytes).toBe(given.data.length);
      expect(t.byteLength, t.name).toBe(given.data.length);
      expect((t.offset - (f.dataOffset ?? 0)) % 64).toBe(0);
      const got = readAprTensorF32(src, t);
      expect(got.length).toBe(expected[t.name]!.length);
      expect([...got], t.name).toEqual([...expected[t.name]!]);
    }
    expect(f.tensors.find((t) => t.name === 'q4k')?.byteLength).toBe(2 * 2 * 144);
    expect(Object.fromEntries(f.metadata)).toEqual({
      model_type: 'llama',
      architecture: 'llama',
      hidden_size: 64,
      rope_theta: 10000,
      tokenizer: '{"vocabulary":["a","b"]}',
      'tokenizer.merges': ['a b'],
      tied_embeddings: true,
    });
    expect(f.metadataJson).toEqual(metadata);
  });

  it('writeAprFile writes the same bytes as encodeApr', () => {
    const { tensors } = allDtypes();
    const path = join(tmp, 'all.apr');
    writeAprFile(path, { metadata: { model_type: 'x' }, tensors });
    expect(new Uint8Array(readFileSync(path))).toEqual(encodeApr({ metadata: { model_type: 'x' }, tensors }));
  });

  it('legacy dtype codes 8 (Q4) and 9 (Q8) read as APR_Q4 / APR_Q8, never as ggml Q8_0 / Q8_1', () => {
    const x = values(40, 5);
    const bytes = encodeApr({
      tensors: [
        { ...aprTensorFromF32('a', [40], x, 'APR_Q4'), rawType: 8 },
        { ...aprTensorFromF32('b', [40], x, 'APR_Q8'), rawType: 9 },
      ],
    });
    const src = new BufferByteSource(bytes);
    const f = readApr(src);
    expect(f.issues).toEqual([]);
    expect(f.tensors.map((t) => [t.dtype, t.rawType])).toEqual([
      ['APR_Q4', 8],
      ['APR_Q8', 9],
    ]);
    expect([...readAprTensorF32(src, f.tensors[1]!)]).toEqual([...dequantizeAprQ8(quantizeAprQ8(x), 40)]);
  });

  it('the writer sorts by code point (Rust byte order) and keeps aprender quirks: names cut to 256 bytes, shapes to 8 dims', () => {
    expect(['\u{1F600}', '\uFFFD', 'b', 'B'].sort(compareCodePoints)).toEqual(['B', 'b', '\uFFFD', '\u{1F600}']);
    const long = 'n'.repeat(300);
    const f = read(
      encodeApr({
        tensors: [
          { name: '\u{1F600}', shape: [1], dtype: 'F32', data: new Uint8Array(4) },
          { name: '\uFFFD', shape: [1], dtype: 'F32', data: new Uint8Array(4) },
          { name: long, shape: [1, 1, 1, 1, 1, 1, 1, 1, 1, 2], dtype: 'F32', data: new Uint8Array(4) },
        ],
      }),
    );
    expect(f.issues).toEqual([]);
    expect(f.tensors.map((t) => t.name)).toEqual(['n'.repeat(256), '\uFFFD', '\u{1F600}']);
    expect(f.tensors[0]?.shape).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('APR Q4K byte sizes pad each row to whole super-blocks (576 → 3 blocks)', () => {
    expect(aprRequiredBytes('Q4_K', [10n, 576n])).toBe(10n * 3n * 144n);
    expect(aprRequiredBytes('Q6_K', [1536n, 576n])).toBe(1536n * 3n * 210n);
    expect(aprRequiredBytes('Q4_K', [300n])).toBe(2n * 144n);
    expect(aprRequiredBytes('Q4_K', [])).toBe(144n);
    expect(aprRequiredBytes('Q4_K', [5n, 0n])).toBe(0n);
    expect(aprRequiredBytes('APR_Q4', [33n])).toBe(36n);
    const dtypes = Object.keys(APR_DTYPE_CODES) as AprDType[];
    for (const d of dtypes)
      if (d !== 'Q4_K' && d !== 'Q6_K') expect(aprRequiredBytes(d, [7n, 9n]), d).toBe(BigInt(tensorByteLength(d, 63) ?? -1));
  });
});

describe('reader checks', () => {
  const good = (): Uint8Array =>
    encodeApr({
      metadata: { model_type: 'x' },
      tensors: [
        { name: 'a', shape: [4], dtype: 'F32', data: quantize('F32', f32s(1, 2, 3, 4)) },
        { name: 'b', shape: [2], dtype: 'F32', data: quantize('F32', f32s(5, 6)) },
      ],
    });
  const entry = (name: string, over: Partial<RawEntry> = {}): RawEntry => ({ name, dtype: 0, dims: [2n], offset: 0n, size: 8n, ...over });

  it('bad magic, v1 and "APR2" magics, short files → F-FILE-001 / F-FILE-002, fatal', () => {
    const g = good();
    const withMagic = (m: string): Uint8Array => {
      const b = g.slice();
      b.set(new TextEncoder().encode(m));
      return b;
    };
    expect(read(withMagic('GGUF')).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/bad magic.*"GGUF"/) },
    ]);
    expect(read(withMagic('APRN')).issues[0]?.message).toMatch(/APR v1/);
    expect(read(withMagic('APR1')).issues[0]?.message).toMatch(/APR v1/);
    expect(read(withMagic('APR2')).issues[0]?.message).toMatch(/AprV2Header::from_bytes accepts only/);
    expect(read(new Uint8Array(2)).issues).toMatchObject([{ code: 'F-FILE-001', fatal: true }]);
    expect(read(g.subarray(0, 40)).issues).toMatchObject([
      { code: 'F-FILE-002', fatal: true, message: expect.stringMatching(/header needs 64 bytes/) },
    ]);
  });

  it('version: major ≠ 2 is fatal, another minor is flagged', () => {
    expect(read(rawApr({ entries: [], version: [3, 0] })).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/version 3\.0/) },
    ]);
    expect(read(rawApr({ entries: [], version: [2, 1] })).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: false, message: expect.stringMatching(/2\.1/) },
    ]);
  });

  it('header and footer CRC mismatches → F-FILE-004', () => {
    const g = good();
    const reserved = g.slice();
    reserved[50] = 1;
    expect(codes(read(reseal(reserved, { header: false })))).toEqual(['F-FILE-004']);
    expect(read(reseal(reserved, { header: false })).issues[0]?.message).toMatch(/header CRC-32 mismatch: stored 0x[0-9a-f]{8}, computed/);
    const data = g.slice();
    const at = Number(new DataView(g.buffer).getBigUint64(32, true)) + 1;
    data[at] = (data[at] as number) ^ 0x40;
    const f = read(data);
    expect(codes(f)).toEqual(['F-FILE-004']);
    expect(f.issues[0]?.message).toMatch(/footer CRC-32 mismatch/);
    expect(f.tensors).toHaveLength(2); // still listed: the table can be trusted
    expect(readApr(new BufferByteSource(data), { verifyFooter: false }).issues).toEqual([]);
  });

  it('LAYOUT_COLUMN_MAJOR → F-FILE-001 (LAYOUT-002); a file without LAYOUT_ROW_MAJOR is accepted', () => {
    expect(read(rawApr({ entries: [], flags: 0x800 })).issues).toMatchObject([
      { code: 'F-FILE-001', message: expect.stringMatching(/LAYOUT-002/) },
    ]);
    expect(read(rawApr({ entries: [], flags: 0 })).issues).toEqual([]);
  });

  it('index not sorted by name / duplicate names → F-FILE-001', () => {
    const data = new Uint8Array(128);
    const unsorted = read(rawApr({ entries: [entry('b'), entry('a', { offset: 64n })], data }));
    expect(unsorted.issues).toMatchObject([
      { code: 'F-FILE-001', tensor: 'a', message: expect.stringMatching(/not sorted by name: 'a' comes after 'b'/) },
    ]);
    expect(unsorted.tensors.map((t) => t.name)).toEqual(['b', 'a']);
    const dup = read(rawApr({ entries: [entry('a'), entry('a', { offset: 64n })], data }));
    expect(dup.issues).toMatchObject([{ code: 'F-FILE-001', tensor: 'a', message: 'duplicate tensor name in the index' }]);
    expect(dup.tensors).toHaveLength(1);
  });

  it('name > 256 bytes, ndim > 8, unknown dtype → F-FILE-001', () => {
    const data = new Uint8Array(64);
    const long = read(rawApr({ entries: [entry('x'.repeat(257))], data }));
    expect(long.issues).toMatchObject([{ code: 'F-FILE-001', message: 'name is 257 bytes, aprender allows at most 256' }]);
    const deep = read(rawApr({ entries: [entry('t', { dims: new Array(9).fill(1n), size: 4n })], data }));
    expect(deep.issues).toMatchObject([{ code: 'F-FILE-001', message: 'ndim 9 exceeds the 8 aprender writes' }]);
    expect(deep.tensors).toEqual([]);
    const bad = read(rawApr({ entries: [entry('t', { dtype: 2 })], data }));
    expect(bad.issues).toMatchObject([{ code: 'F-FILE-001', message: 'unknown APR dtype code 2' }]);
  });

  it('data out of bounds → F-FILE-002; overlapping → F-FILE-003; misaligned → F-FILE-003', () => {
    const data = new Uint8Array(128);
    const oob = read(rawApr({ entries: [entry('a', { offset: 64n, size: 200n })], data }));
    expect(oob.issues).toMatchObject([
      { code: 'F-FILE-002', tensor: 'a', message: expect.stringMatching(/runs past the end of the data section/) },
    ]);
    const huge = read(rawApr({ entries: [entry('a', { size: 2n ** 63n })], data }));
    expect(codes(huge)).toEqual(['F-FILE-002']);
    expect(huge.tensors).toEqual([]);
    const overlap = read(rawApr({ entries: [entry('a', { size: 70n, dims: [2n] }), entry('b', { offset: 64n })], data }));
    expect(overlap.issues).toMatchObject([{ code: 'F-FILE-003', tensor: 'b', message: expect.stringMatching(/overlaps 'a'/) }]);
    const misaligned = read(rawApr({ entries: [entry('a', { offset: 8n })], data }));
    expect(misaligned.issues).toMatchObject([{ code: 'F-FILE-003', message: 'offset 8 is not a multiple of 64' }]);
  });

  it('size_bytes that disagrees with dtype × shape is reported, not flagged (aprender does not check it)', () => {
    const f = read(rawApr({ entries: [entry('a', { dims: [3n], size: 8n })], data: new Uint8Array(64) }));
    expect(f.issues).toEqual([]);
    expect(f.tensors[0]).toMatchObject({ byteLength: 12, spanBytes: 8 });
  });

  it('implausible tensor_count and a truncated index are fatal', () => {
    const big = read(rawApr({ entries: [], tensorCount: 2 ** 32 - 1 }));
    expect(big.issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/implausible tensor_count 4294967295/) },
    ]);
    const g = good();
    const cut = read(g.subarray(0, 140));
    expect(cut.issues.filter((i) => i.fatal)).toMatchObject([{ code: 'F-FILE-002' }]);
    expect(cut.tensors).toEqual([]);
  });

  it('metadata that is not JSON is flagged but the tensors are still read', () => {
    const f = read(rawApr({ entries: [entry('a')], data: new Uint8Array(64), metadata: '{"a":' }));
    expect(f.issues).toMatchObject([
      { code: 'F-FILE-001', fatal: false, message: expect.stringMatching(/metadata is not valid UTF-8 JSON/) },
    ]);
    expect(f.tensors).toHaveLength(1);
    expect(read(rawApr({ entries: [], metadata: '[1]' })).issues[0]?.message).toMatch(/not a JSON object \(got an array\)/);
  });

  it('readAprTensorF32 refuses entries that are outside the file or inconsistent', () => {
    const g = good();
    const src = new BufferByteSource(g);
    const [a] = read(g).tensors;
    expect(() => readAprTensorF32(src, { ...a!, offset: g.length - 2 })).toThrow(TensorReadError);
    expect(() => readAprTensorF32(src, { ...a!, byteLength: 12 })).toThrow(/do not hold/);
    expect(() => readAprTensorF32(src, { ...a!, dtype: 'Q8_0' })).toThrow(/not an APR dtype/);
  });
});

describe('readModelFile', () => {
  it('dispatches on the magic; anything else is format unknown with F-FILE-001', () => {
    const apr = readModelFile(new BufferByteSource(encodeApr({ tensors: [] })));
    expect(apr.format).toBe('apr');
    expect(apr.issues).toEqual([]);
    expect(readModelFile(new BufferByteSource(new TextEncoder().encode('APRN....'))).issues[0]?.message).toMatch(/APR v1/);
    const st = new Uint8Array(16);
    st.set([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]);
    expect(readModelFile(new BufferByteSource(st))).toMatchObject({ format: 'safetensors', issues: [] });
    const gguf = readModelFile(new BufferByteSource(new TextEncoder().encode('GGUF\x03\0\0\0')));
    expect(gguf.format).toBe('gguf');
    expect(gguf.issues[0]?.code).toBe('F-FILE-002');
    for (const junk of [new Uint8Array(0), new TextEncoder().encode('PK\x03\x04 zip file')]) {
      const u = readModelFile(new BufferByteSource(junk));
      expect(u).toMatchObject({ format: 'unknown', tensors: [], issues: [{ code: 'F-FILE-001', fatal: true }] });
    }
  });
});
