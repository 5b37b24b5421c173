import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferByteSource } from '../../src/formats/byte-source.js';
import { canDequantize, dequantize, quantize } from '../../src/formats/codecs/index.js';
import { TensorReadError } from '../../src/formats/gguf/reader.js';
import { SAFETENSORS_BITS, SAFETENSORS_DTYPES, type SafetensorsDType } from '../../src/formats/safetensors/dtypes.js';
import { MAX_HEADER_BYTES, readSafetensors, readSafetensorsTensorF32, type SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { encodeSafetensors, f32Bytes, writeSafetensorsFile, type SafetensorsTensorIn } from '../../src/formats/safetensors/writer.js';
import { ALL_DTYPES, type FileCode } from '../../src/formats/types.js';

const read = (bytes: Uint8Array): SafetensorsFile => readSafetensors(new BufferByteSource(bytes));
const codes = (f: SafetensorsFile): FileCode[] => f.issues.map((i) => i.code);
const f32s = (...v: number[]): Float32Array => Float32Array.from(v);

const tmp = mkdtempSync(join(tmpdir(), 'tmgt-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A file with the given header JSON text (padded with spaces to 8) and buffer. */
function withHeader(json: string, buffer: Uint8Array = new Uint8Array(0), pad = true): Uint8Array {
  let text = json;
  if (pad) text += ' '.repeat((8 - (new TextEncoder().encode(text).length % 8)) % 8);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(buffer, 8 + h.length);
  return out;
}

describe('writer: byte-identical to the Rust serializer (safetensors/src/tensor.rs tests)', () => {
  const data = f32Bytes(f32s(0, 1, 2, 3, 4, 5));

  it('test_serialization', () => {
    expect([...encodeSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data }])]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44,
      34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34,
      58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it('test_serialization_forced_alignement (space padding to 8)', () => {
    expect([...encodeSafetensors([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data }])]).toEqual([
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34,
      115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115,
      34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128,
      64, 0, 0, 160, 64,
    ]);
  });

  it('test_empty, with and without __metadata__', () => {
    expect([...encodeSafetensors([])]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    expect([...encodeSafetensors([], { framework: 'pt' })]).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119,
      111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  it('orders by descending dtype (enum order) then name; integer-like names keep that order', () => {
    const t = (name: string, dtype: SafetensorsDType, n: number): SafetensorsTensorIn => ({
      name,
      dtype,
      shape: [n],
      data: new Uint8Array((n * SAFETENSORS_BITS[dtype]) / 8),
    });
    const bytes = encodeSafetensors([
      t('b', 'F16', 1),
      t('a', 'F16', 1),
      t('z', 'U8', 3),
      t('1', 'I64', 1),
      t('0', 'F32', 1),
      t('c', 'BOOL', 1),
      t('10', 'F32', 1),
    ]);
    const f = read(bytes);
    expect(f.issues).toEqual([]);
    expect(f.tensors.map((x) => x.name)).toEqual(['1', '0', '10', 'a', 'b', 'z', 'c']);
    const json = new TextDecoder().decode(bytes.subarray(8, 8 + (f.headerBytes ?? 0)));
    expect(json.indexOf('"1"')).toBeLessThan(json.indexOf('"0"'));
    expect(json.trimEnd().endsWith('}')).toBe(true);
  });

  it('writeSafetensorsFile writes the same bytes; f32Bytes is a view', () => {
    const x = f32s(1, 2, 3);
    const path = join(tmp, 'a.safetensors');
    const tensors: SafetensorsTensorIn[] = [
      { name: 'w', dtype: 'F32', shape: [3], data: f32Bytes(x) },
      { name: 'h', dtype: 'F16', shape: [3], data: quantize('F16', x) },
    ];
    writeSafetensorsFile(path, tensors, { format: 'pt' });
    expect(new Uint8Array(readFileSync(path))).toEqual(encodeSafetensors(tensors, { format: 'pt' }));
    expect(f32Bytes(x).buffer).toBe(x.buffer);
    expect(() => encodeSafetensors([tensors[0]!, tensors[0]!])).toThrow(/duplicate/);
  });
});

describe('every dtype: write → read', () => {
  /** Bytes of every element pattern we can express, with the values they decode to (undefined: no decoder). */
  const cases: Record<SafetensorsDType, { shape: number[]; bytes: number[]; values?: number[] }> = {
    BOOL: { shape: [3], bytes: [0, 1, 1], values: [0, 1, 1] },
    F4: { shape: [2, 2], bytes: [0x21, 0x43] },
    F6_E2M3: { shape: [4], bytes: [1, 2, 3] },
    F6_E3M2: { shape: [8], bytes: [1, 2, 3, 4, 5, 6] },
    U8: { shape: [2], bytes: [0, 255], values: [0, 255] },
    I8: { shape: [2], bytes: [0x80, 0x7f], values: [-128, 127] },
    F8_E5M2: { shape: [5], bytes: [0x3c, 0x7b, 0x7c, 0xfc, 0x01], values: [1, 57344, Infinity, -Infinity, 2 ** -16] },
    F8_E4M3: { shape: [4], bytes: [0x38, 0x7e, 0xfe, 0x01], values: [1, 448, -448, 2 ** -9] },
    F8_E8M0: { shape: [3], bytes: [127, 0, 254], values: [1, 2 ** -127, 2 ** 127] },
    F8_E4M3FNUZ: { shape: [3], bytes: [0x40, 0x7f, 0x00], values: [1, 240, 0] },
    F8_E5M2FNUZ: { shape: [3], bytes: [0x40, 0x7f, 0x01], values: [1, 57344, 2 ** -17] },
    I16: { shape: [2], bytes: [0x00, 0x80, 0xff, 0x7f], values: [-32768, 32767] },
    U16: { shape: [1], bytes: [0xff, 0xff], values: [65535] },
    F16: { shape: [2], bytes: [0x00, 0x3c, 0x00, 0xc0], values: [1, -2] },
    BF16: { shape: [1], bytes: [0x80, 0x3f], values: [1] },
    I32: { shape: [1], bytes: [0xfe, 0xff, 0xff, 0xff], values: [-2] },
    U32: { shape: [1], bytes: [0xff, 0xff, 0xff, 0xff], values: [4294967296] },
    F32: { shape: [1], bytes: [0, 0, 0xc0, 0x3f], values: [1.5] },
    C64: { shape: [1], bytes: [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40] },
    F64: { shape: [1], bytes: [0, 0, 0, 0, 0, 0, 0xf8, 0x3f], values: [1.5] },
    I64: { shape: [1], bytes: [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], values: [-3] },
    U64: { shape: [1], bytes: [0, 0, 0, 0, 0, 0, 0, 1], values: [2 ** 56] },
  };

  it('lists every dtype with its shape and size; decodes the decodable ones', () => {
    const tensors = SAFETENSORS_DTYPES.map((dtype) => ({
      name: `t_${dtype}`,
      dtype,
      shape: cases[dtype].shape,
      data: Uint8Array.from(cases[dtype].bytes),
    }));
    const bytes = encodeSafetensors(tensors);
    const src = new BufferByteSource(bytes);
    const f = readSafetensors(src);
    expect(f.issues).toEqual([]);
    expect(f.tensors).toHaveLength(SAFETENSORS_DTYPES.length);
    for (const t of f.tensors) {
      const dtype = t.dtype as SafetensorsDType;
      const c = cases[dtype];
      expect(t.name).toBe(`t_${dtype}`);
      expect(t.shape).toEqual(c.shape);
      expect(t.byteLength).toBe(c.bytes.length);
      expect(t.spanBytes).toBe(c.bytes.length);
      expect(t.rawType).toBe(SAFETENSORS_DTYPES.indexOf(dtype));
      if (c.values === undefined) {
        expect(canDequantize(dtype)).toBe(false);
        expect(() => readSafetensorsTensorF32(src, t)).toThrow(TensorReadError);
      } else {
        expect([...readSafetensorsTensorF32(src, t)], dtype).toEqual(c.values);
      }
    }
  });

  it('FP8 NaN encodings and the plain/int decoders', () => {
    const nan = (dtype: SafetensorsDType, b: number): boolean => Number.isNaN(dequantize(dtype, Uint8Array.of(b), 1)[0]);
    expect(nan('F8_E4M3', 0x7f) && nan('F8_E4M3', 0xff) && nan('F8_E5M2', 0x7d) && nan('F8_E8M0', 0xff)).toBe(true);
    expect(nan('F8_E4M3FNUZ', 0x80) && nan('F8_E5M2FNUZ', 0x80)).toBe(true);
    expect(nan('F8_E4M3', 0x7e)).toBe(false);
    expect(Object.is(dequantize('F8_E4M3', Uint8Array.of(0x80), 1)[0], -0)).toBe(true);
    expect(() => dequantize('F4', new Uint8Array(1), 2)).toThrow(/no f32 decoder/);
    expect(() => quantize('I8', f32s(1))).toThrow(/no I8 encoder/);
    expect([...dequantize('F64', quantize('F64', f32s(0.1, -3)), 2)]).toEqual([...f32s(0.1, -3)]);
    expect(ALL_DTYPES).toEqual(expect.arrayContaining([...SAFETENSORS_DTYPES]));
  });

  it('rank-0 and zero-size tensors are allowed', () => {
    const bytes = encodeSafetensors([
      { name: 's', dtype: 'F32', shape: [], data: f32Bytes(f32s(7)) },
      { name: 'z', dtype: 'F32', shape: [0, 3], data: new Uint8Array(0) },
      { name: 'z2', dtype: 'F16', shape: [4, 0], data: new Uint8Array(0) },
    ]);
    const src = new BufferByteSource(bytes);
    const f = readSafetensors(src);
    expect(f.issues).toEqual([]);
    expect(f.tensors.map((t) => [t.name, t.shape, t.byteLength])).toEqual([
      ['s', [], 4],
      ['z', [0, 3], 0],
      ['z2', [4, 0], 0],
    ]);
    expect([...readSafetensorsTensorF32(src, f.tensors[0]!)]).toEqual([7]);
    expect([...readSafetensorsTensorF32(src, f.tensors[1]!)]).toEqual([]);
  });
});

describe('reader validation (Metadata::validate and read_metadata)', () => {
  const t = (dtype: string, shape: number[], offs: [number, number]): string => JSON.stringify({ dtype, shape, data_offsets: offs });

  it('header length: < 8 bytes, > 100 MB, past the end', () => {
    expect(read(new Uint8Array(7)).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/HeaderTooSmall/) },
    ]);
    const big = new Uint8Array(16);
    new DataView(big.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    expect(read(big).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/exceeds the limit of 100000000 bytes/) },
    ]);
    const past = new Uint8Array(16);
    new DataView(past.buffer).setBigUint64(0, 100n, true);
    expect(read(past).issues).toMatchObject([{ code: 'F-FILE-002', fatal: true, message: expect.stringMatching(/InvalidHeaderLength/) }]);
  });

  it('header not UTF-8 / not JSON / not an object → F-FILE-001, fatal', () => {
    const bad = withHeader('{"a":1}');
    bad[10] = 0xff;
    expect(read(bad).issues).toMatchObject([{ code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/not valid UTF-8/) }]);
    expect(read(withHeader('{"a":')).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/not valid JSON/) },
    ]);
    expect(read(withHeader('[1,2]')).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/an array, not a JSON object/) },
    ]);
    expect(read(withHeader('{}\0\0\0\0\0\0', undefined, false)).issues[0]?.code).toBe('F-FILE-001'); // NUL padding is not JSON whitespace
  });

  it('bad entries and __metadata__ are flagged per tensor, the rest is still read', () => {
    const json = `{"__metadata__":{"ok":"yes","n":3},"a":${t('F32', [1], [0, 4])},"b":${t('F9', [1], [4, 8])},"c":{"dtype":"F32","shape":[-1],"data_offsets":[8,8]},"d":7}`;
    const f = read(withHeader(json, new Uint8Array(8)));
    expect(f.tensors.map((x) => x.name)).toEqual(['a']);
    expect(Object.fromEntries(f.metadata)).toEqual({ ok: 'yes' });
    expect(f.issues.map((i) => [i.code, i.tensor, i.message])).toEqual([
      ['F-FILE-001', undefined, "__metadata__['n'] is 3, not a string"],
      ['F-FILE-001', 'c', 'shape [-1] is not a list of non-negative integers ≤ 2^53'],
      ['F-FILE-001', 'd', 'entry is 7, not {dtype, shape, data_offsets}'],
      ['F-FILE-001', 'b', 'unknown dtype "F9"'],
    ]);
  });

  it('holes, overlaps and end < begin → F-FILE-003 (after sorting by offsets)', () => {
    const hole = read(withHeader(`{"b":${t('F32', [1], [8, 12])},"a":${t('F32', [1], [0, 4])}}`, new Uint8Array(12)));
    expect(hole.issues).toMatchObject([
      { code: 'F-FILE-003', tensor: 'b', message: 'tensor has offset 8, expected 4: a hole of 4 bytes (InvalidOffset)' },
    ]);
    const overlap = read(withHeader(`{"a":${t('F32', [2], [0, 8])},"b":${t('F32', [1], [4, 8])}}`, new Uint8Array(8)));
    expect(overlap.issues).toMatchObject([{ code: 'F-FILE-003', tensor: 'b', message: expect.stringMatching(/an overlap of 4 bytes/) }]);
    const backwards = read(withHeader(`{"a":${t('F32', [1], [4, 0])}}`, new Uint8Array(0)));
    expect(codes(backwards)).toContain('F-FILE-003');
    expect(backwards.issues[0]?.message).toMatch(/end < begin/);
  });

  it('exact sizes: span ≠ dtype × shape → F-FILE-001 (TensorInvalidInfo); overflow; sub-byte totals', () => {
    const wrong = read(withHeader(`{"a":${t('F32', [2], [0, 4])}}`, new Uint8Array(4)));
    // the 8 bytes it needs also run past the end of this 4-byte buffer
    expect(wrong.issues).toMatchObject([
      { code: 'F-FILE-001', tensor: 'a', message: 'data_offsets span 4 bytes but F32 × [2] needs 8 (TensorInvalidInfo)' },
      { code: 'F-FILE-002', tensor: 'a' },
    ]);
    expect(wrong.tensors[0]).toMatchObject({ byteLength: 8, spanBytes: 4 });
    const d = 2 ** 31;
    const overflow = read(withHeader(`{"a":${t('F32', [d, d, d], [0, 4])}}`, new Uint8Array(4)));
    expect(overflow.issues[0]?.message).toMatch(/overflows usize \(ValidationOverflow\)/);
    expect(overflow.tensors).toEqual([]);
    const big = read(withHeader(`{"a":${t('U8', [2 ** 30, 2 ** 30], [0, 4])}}`, new Uint8Array(4)));
    expect(big.issues[0]?.message).toMatch(/more than 2\^53/);
    const odd = read(withHeader(`{"a":${t('F4', [3], [0, 2])}}`, new Uint8Array(2)));
    expect(odd.issues[0]?.message).toBe('3 F4 elements are 12 bits, not a whole number of bytes');
    const unsafe = read(withHeader(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551615]}}`));
    expect(unsafe.issues[0]?.message).toMatch(/data_offsets \[0,18446744073709552000\] is not \[begin, end\]/);
  });

  it('8 + N + last_end must equal the file length: trailing bytes and truncated data → F-FILE-002', () => {
    const good = encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [4], data: f32Bytes(f32s(1, 2, 3, 4)) }]);
    expect(read(good).issues).toEqual([]);
    const longer = new Uint8Array(good.length + 3);
    longer.set(good);
    expect(read(longer).issues).toMatchObject([
      { code: 'F-FILE-002', fatal: false, message: expect.stringMatching(/MetadataIncompleteBuffer/) },
    ]);
    const cut = read(good.subarray(0, good.length - 1));
    expect(codes(cut)).toEqual(['F-FILE-002', 'F-FILE-002']);
    expect(cut.issues[0]).toMatchObject({ tensor: 'a', message: expect.stringMatching(/runs past the end of the file/) });
    expect(() => readSafetensorsTensorF32(new BufferByteSource(good.subarray(0, good.length - 1)), cut.tensors[0]!)).toThrow(
      TensorReadError,
    );
  });

  it('a header with leading whitespace and no padding is still read (serde_json accepts it)', () => {
    const f = read(withHeader(` \n{"a":${t('U8', [1], [0, 1])}}`, Uint8Array.of(9), false));
    expect(f.issues).toEqual([]);
    expect(f.tensors[0]?.dtype).toBe('U8');
  });
});
