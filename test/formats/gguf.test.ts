import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BufferByteSource, FileByteSource } from '../../src/formats/byte-source.js';
import { quantize, TYPE_INFO } from '../../src/formats/codecs/index.js';
import { readGguf, readTensorBytes, readTensorF32, TensorReadError, type GgufFile } from '../../src/formats/gguf/reader.js';
import { encodeGguf, writeGgufFile, type GgufKv, type GgufTensorIn, type GgufValueType } from '../../src/formats/gguf/writer.js';
import type { FileCode, MetaValue } from '../../src/formats/types.js';

const fixturePath = (name: string): string => fileURLToPath(new URL(`../fixtures/llamacpp/${name}`, import.meta.url));
const fixtureBytes = (name: string): Uint8Array => new Uint8Array(readFileSync(fixturePath(name)));
const read = (bytes: Uint8Array): GgufFile => readGguf(new BufferByteSource(bytes));
const codes = (f: GgufFile): FileCode[] => f.issues.map((i) => i.code);
const pad32 = (n: number): number => n + ((32 - (n % 32)) % 32);

const tmp = mkdtempSync(join(tmpdir(), 'tmgt-gguf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('llama.cpp fixtures', () => {
  const files = [
    ['tiny-llama-f32.gguf', 'F32', 0],
    ['tiny-llama-f16.gguf', 'F16', 1],
    ['tiny-llama-bf16.gguf', 'BF16', 32],
    ['tiny-llama-q8_0.gguf', 'Q8_0', 7],
    ['tiny-llama-q4_0.gguf', 'Q4_0', 2],
  ] as const;
  const expectedNames = [
    'token_embd.weight',
    ...[0, 1].flatMap((b) =>
      ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map(
        (n) => `blk.${b}.${n}.weight`,
      ),
    ),
    'output_norm.weight',
    'output.weight',
  ];
  const expectedShapes: Record<string, number[]> = {
    'token_embd.weight': [320, 256],
    'output.weight': [320, 256],
    'output_norm.weight': [256],
    'blk.0.attn_norm.weight': [256],
    'blk.0.attn_q.weight': [256, 256],
    'blk.0.attn_k.weight': [128, 256],
    'blk.0.attn_v.weight': [128, 256],
    'blk.0.attn_output.weight': [256, 256],
    'blk.0.ffn_gate.weight': [512, 256],
    'blk.0.ffn_up.weight': [512, 256],
    'blk.0.ffn_down.weight': [256, 512],
  };

  it.each(files)('%s: names, shapes, types, offsets, metadata', (file, dtype, fileType) => {
    const bytes = fixtureBytes(file);
    const f = read(bytes);
    expect(f.issues).toEqual([]);
    expect(f.version).toBe(3);
    expect(f.alignment).toBe(32);
    // gguf-py keeps the converter's order; llama-quantize writes output.weight first, then the rest sorted per layer.
    expect(f.tensors.map((t) => t.name).sort()).toEqual([...expectedNames].sort());
    if (dtype === 'F32') expect(f.tensors.map((t) => t.name)).toEqual(expectedNames);
    else expect(f.tensors[0]?.name).toBe('output.weight');
    for (const t of f.tensors) {
      const want = expectedShapes[t.name.replace('blk.1.', 'blk.0.')];
      if (want !== undefined) expect(t.shape, t.name).toEqual(want);
      expect(t.dtype, t.name).toBe(t.shape.length === 1 ? 'F32' : dtype);
      expect(t.rawType).toBe(TYPE_INFO[t.dtype].ggmlId);
    }
    // Offsets: contiguous in order from the data section, each padded to 32; the last span runs to EOF.
    let at = f.dataOffset as number;
    expect(at % 32).toBe(0);
    for (const t of f.tensors) {
      expect(t.offset, t.name).toBe(at);
      expect(t.spanBytes, t.name).toBe(pad32(t.byteLength));
      at += pad32(t.byteLength);
    }
    expect(at).toBe(bytes.length);

    const m = f.metadata;
    expect(m.get('general.architecture')).toBe('llama');
    expect(m.get('general.file_type')).toBe(fileType);
    expect(m.get('llama.block_count')).toBe(2);
    expect(m.get('llama.embedding_length')).toBe(256);
    expect(m.get('llama.feed_forward_length')).toBe(512);
    expect(m.get('llama.attention.head_count')).toBe(8);
    expect(m.get('llama.attention.head_count_kv')).toBe(4);
    expect(m.get('llama.rope.freq_base')).toBe(10000);
    expect(m.get('llama.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-5));
    expect(m.get('tokenizer.ggml.model')).toBe('gpt2');
    const tokens = m.get('tokenizer.ggml.tokens') as string[];
    expect(tokens).toHaveLength(320);
    expect(tokens[0]).toBe('Ā'); // byte 0 in GPT-2 byte-to-unicode form
    expect(tokens[318]).toBe('<|bos|>');
    expect(tokens[319]).toBe('<|eos|>');
    expect(m.get('tokenizer.ggml.merges')).toEqual(['Ġ t', 'h e', 'Ġt he', 'i n']);
    expect((m.get('tokenizer.ggml.token_type') as number[]).length).toBe(320);
    expect(m.get('tokenizer.ggml.bos_token_id')).toBe(318);
    expect(m.get('tokenizer.ggml.eos_token_id')).toBe(319);
    expect(m.get('tokenizer.ggml.add_bos_token')).toBe(false);
    expect(f.kvTypes.get('tokenizer.ggml.tokens')).toEqual({ type: 'array', itemType: 'string' });
    expect(f.kvTypes.get('tokenizer.ggml.token_type')).toEqual({ type: 'array', itemType: 'i32' });
    if (dtype !== 'F32') expect(m.get('general.quantization_version')).toBe(2);
  });

  it('reads the same table through FileByteSource (chunked reads)', () => {
    const src = new FileByteSource(fixturePath('tiny-llama-q8_0.gguf'));
    try {
      const viaFile = readGguf(src);
      const viaBuffer = read(fixtureBytes('tiny-llama-q8_0.gguf'));
      expect(viaFile.tensors).toEqual(viaBuffer.tensors);
      expect([...viaFile.metadata]).toEqual([...viaBuffer.metadata]);
      const t = viaFile.tensors.find((e) => e.name === 'blk.1.ffn_down.weight');
      if (t === undefined) throw new Error('missing tensor');
      expect(readTensorF32(src, t)).toHaveLength(256 * 512);
    } finally {
      src.close();
    }
  });

  it('our writer re-encodes the gguf-py f32 fixture byte for byte', () => {
    const bytes = fixtureBytes('tiny-llama-f32.gguf');
    const src = new BufferByteSource(bytes);
    const f = readGguf(src);
    const kvs: GgufKv[] = [...f.metadata].map(([key, value]) => {
      const t = f.kvTypes.get(key);
      if (t === undefined) throw new Error(key);
      return t.type === 'array'
        ? { key, type: 'array', itemType: t.itemType as GgufValueType, value: value as (string | number)[] }
        : { key, type: t.type, value: value as string | number | boolean };
    });
    const tensors: GgufTensorIn[] = f.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, data: readTensorBytes(src, t) }));
    const again = encodeGguf({ kvs, tensors });
    expect(again.length).toBe(bytes.length);
    expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes))).toBe(0);
  });
});

/** A small model with every value type, used by round-trip, corruption and fuzz tests. */
function smallModel(): { kvs: GgufKv[]; tensors: GgufTensorIn[] } {
  const w = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 0.1);
  const kvs: GgufKv[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: 'tïny ✓ 模型' },
    { key: 'test.u8', type: 'u8', value: 255 },
    { key: 'test.i8', type: 'i8', value: -128 },
    { key: 'test.u16', type: 'u16', value: 65535 },
    { key: 'test.i16', type: 'i16', value: -32768 },
    { key: 'test.u32', type: 'u32', value: 4294967295 },
    { key: 'test.i32', type: 'i32', value: -2147483648 },
    { key: 'test.f32', type: 'f32', value: 0.1 },
    { key: 'test.f64', type: 'f64', value: 0.1 },
    { key: 'test.bool', type: 'bool', value: true },
    { key: 'test.u64', type: 'u64', value: 2n ** 64n - 1n },
    { key: 'test.u64small', type: 'u64', value: 12345 },
    { key: 'test.i64', type: 'i64', value: -(2n ** 63n) },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: ['a', 'b', '<|eos|>', ''] },
    { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: new Float32Array([0, -1.5, 2]) },
    { key: 'test.empty', type: 'array', itemType: 'u8', value: [] },
    { key: 'test.bools', type: 'array', itemType: 'bool', value: [true, false] },
  ];
  const tensors: GgufTensorIn[] = [
    { name: 'a.weight', shape: [2, 32], dtype: 'Q8_0', data: quantize('Q8_0', w) },
    { name: 'b.weight', shape: [64], dtype: 'F32', data: quantize('F32', w) },
    { name: 'c.weight', shape: [2, 32], dtype: 'Q4_0', data: quantize('Q4_0', w) },
    { name: 'd.weight', shape: [4, 4, 2, 2], dtype: 'F16', data: quantize('F16', w) },
  ];
  return { kvs, tensors };
}

describe('writer → reader round trip', () => {
  it('every value type and tensor survives', () => {
    const model = smallModel();
    const bytes = encodeGguf(model);
    const f = read(bytes);
    expect(f.issues).toEqual([]);
    const expected: Record<string, MetaValue> = {
      'general.architecture': 'llama',
      'general.name': 'tïny ✓ 模型',
      'test.u8': 255,
      'test.i8': -128,
      'test.u16': 65535,
      'test.i16': -32768,
      'test.u32': 4294967295,
      'test.i32': -2147483648,
      'test.f32': Math.fround(0.1),
      'test.f64': 0.1,
      'test.bool': true,
      'test.u64': 2n ** 64n - 1n, // beyond 2^53: stays bigint
      'test.u64small': 12345, // safe: number
      'test.i64': -(2n ** 63n),
      'tokenizer.ggml.tokens': ['a', 'b', '<|eos|>', ''],
      'tokenizer.ggml.scores': [0, -1.5, 2],
      'test.empty': [],
      'test.bools': [true, false],
    };
    expect(Object.fromEntries(f.metadata)).toEqual(expected);
    for (const kv of model.kvs) {
      expect(f.kvTypes.get(kv.key)).toEqual(kv.type === 'array' ? { type: 'array', itemType: kv.itemType } : { type: kv.type });
    }
    expect(f.tensors.map((t) => [t.name, t.shape, t.dtype])).toEqual(model.tensors.map((t) => [t.name, t.shape, t.dtype]));
    const src = new BufferByteSource(bytes);
    f.tensors.forEach((t, i) => expect([...readTensorBytes(src, t)]).toEqual([...(model.tensors[i] as GgufTensorIn).data]));
  });

  it('writeGgufFile writes the same bytes as encodeGguf, and honours a caller-given alignment', () => {
    const model = { ...smallModel(), alignment: 64 };
    model.kvs.push({ key: 'general.alignment', type: 'u32', value: 64 });
    const path = join(tmp, 'small.gguf');
    writeGgufFile(path, model);
    const onDisk = new Uint8Array(readFileSync(path));
    expect(Buffer.compare(Buffer.from(onDisk), Buffer.from(encodeGguf(model)))).toBe(0);
    const f = read(onDisk);
    expect(f.issues).toEqual([]);
    expect(f.alignment).toBe(64);
    for (const t of f.tensors) expect(t.offset % 64).toBe(0);
  });

  it('general.alignment is written only if the caller includes it', () => {
    const f = read(encodeGguf(smallModel()));
    expect(f.metadata.has('general.alignment')).toBe(false);
  });

  it('rejects values that do not fit their declared type', () => {
    const bad =
      (kv: GgufKv): (() => Uint8Array) =>
      () =>
        encodeGguf({ kvs: [kv], tensors: [] });
    expect(bad({ key: 'x', type: 'u8', value: 256 })).toThrow(/'x'.*u8/);
    expect(bad({ key: 'x', type: 'u64', value: 1.5 })).toThrow(/safe integer or a bigint/);
    expect(bad({ key: 'x', type: 'array', value: [1] })).toThrow(/itemType/);
  });
});

/** Byte position of a tensor info's `offset` field, found from its name (hermetic patching helper). */
function offsetFieldOf(bytes: Uint8Array, name: string, nDims: number): number {
  const needle = Buffer.from(name);
  const at = Buffer.from(bytes).indexOf(needle);
  if (at < 0) throw new Error(name);
  return at + needle.length + 4 + 8 * nDims + 4;
}

function patchU64(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(at, v, true);
  return out;
}

function patchU32(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(at, v, true);
  return out;
}

describe('bounded reads', () => {
  it('reads a 2 MB header in windows of at most 1 MiB (strings may straddle them), never the whole file', () => {
    const tokens = Array.from({ length: 150_000 }, (_, i) => `tok_${i}_${'x'.repeat(i % 7)}`);
    const data = new Uint8Array(4 << 20);
    const bytes = encodeGguf({
      kvs: [
        { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: tokens },
        { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: new Float32Array(150_000).fill(-1) },
      ],
      tensors: [{ name: 'big', shape: [1 << 20], dtype: 'F32', data }],
    });
    const inner = new BufferByteSource(bytes);
    const reads: number[] = [];
    const counting = { size: inner.size, read: (o: number, n: number) => (reads.push(n), inner.read(o, n)), close: () => {} };
    const f = readGguf(counting);
    expect(f.issues).toEqual([]);
    expect(f.metadata.get('tokenizer.ggml.tokens')).toEqual(tokens);
    expect(Math.max(...reads)).toBeLessThanOrEqual(1 << 20);
    expect(reads.reduce((a, b) => a + b, 0)).toBeLessThan(bytes.length - data.length + (1 << 20) + (1 << 20));
    expect(reads.length).toBeGreaterThan(1);
  });
});

describe('malformed files become issues, never exceptions', () => {
  const good = encodeGguf(smallModel());

  it('a truncated file: the tensor past the end gets F-FILE-002, the rest stay readable', () => {
    const bytes = fixtureBytes('tiny-llama-q4_0.gguf');
    const cut = bytes.subarray(0, bytes.length - 1000);
    const f = read(cut);
    const last = f.tensors.at(-1);
    if (last === undefined) throw new Error('missing');
    expect(last.name).toBe('blk.1.ffn_up.weight');
    expect(f.issues).toHaveLength(1);
    expect(f.issues[0]).toMatchObject({ code: 'F-FILE-002', fatal: false, tensor: last.name });
    expect(f.issues[0]?.message).toMatch(/runs past the end of the file \(767000 bytes\)/);
    expect(last.spanBytes).toBe(cut.length - last.offset); // to the end of what is there
    const src = new BufferByteSource(cut);
    expect(() => readTensorBytes(src, last)).toThrow(TensorReadError);
    expect(() => readTensorF32(src, last)).toThrow(/not inside the file/);
    const first = f.tensors[0];
    if (first === undefined) throw new Error('missing');
    expect(readTensorF32(src, first)).toHaveLength(320 * 256);
  });

  it('a file truncated inside the header: F-FILE-002, fatal, no tensor table', () => {
    const f = read(fixtureBytes('tiny-llama-f32.gguf').subarray(0, 3000));
    expect(codes(f)).toEqual(['F-FILE-002']);
    expect(f.issues[0]?.fatal).toBe(true);
    expect(f.tensors).toEqual([]);
    expect(f.metadata.get('general.architecture')).toBe('llama'); // what was read before the cut is kept
  });

  it.each([
    ['empty file', new Uint8Array(0), /too short/],
    ['bad magic', Uint8Array.from([0x47, 0x47, 0x4d, 0x4c, 3, 0, 0, 0]), /bad magic.*47 47 4d 4c/],
    ['version 1', patchU32(good, 4, 1), /version 1/],
    ['version 0', patchU32(good, 4, 0), /version 0/],
    ['version 4', patchU32(good, 4, 4), /version 4/],
    ['big-endian header', patchU32(good, 4, 0x03000000), /other byte order/],
  ])('%s → F-FILE-001', (_label, bytes, message) => {
    const f = read(bytes);
    expect(codes(f)).toEqual(['F-FILE-001']);
    expect(f.issues[0]?.fatal).toBe(true);
    expect(f.issues[0]?.message).toMatch(message);
  });

  it('GGUF v2 is read like v3', () => {
    const f = read(patchU32(good, 4, 2));
    expect(f.issues).toEqual([]);
    expect(f.version).toBe(2);
    expect(f.tensors).toHaveLength(4);
  });

  it('a huge tensor count or string length is rejected in milliseconds', () => {
    const t0 = performance.now();
    const hugeCount = read(patchU64(good, 8, 2n ** 60n));
    const hugeKvCount = read(patchU64(good, 16, 2n ** 64n - 1n));
    const hugeString = read(patchU64(good, 24, 2n ** 40n)); // the first key's length
    const elapsedMs = performance.now() - t0;
    expect(codes(hugeCount)).toEqual(['F-FILE-001']);
    expect(hugeCount.issues[0]?.message).toMatch(/tensor_count 1152921504606846976/);
    expect(codes(hugeKvCount)).toEqual(['F-FILE-001']);
    expect(codes(hugeString)).toEqual(['F-FILE-001']);
    expect(hugeString.issues[0]?.message).toMatch(/1099511627776.*more than the whole file/);
    expect(elapsedMs).toBeLessThan(100);
  });

  it('a huge array length → F-FILE-001 without allocating', () => {
    const at = Buffer.from(good).indexOf(Buffer.from('tokenizer.ggml.tokens')) + 'tokenizer.ggml.tokens'.length + 4 + 4;
    const f = read(patchU64(good, at, 2n ** 62n));
    expect(codes(f)).toEqual(['F-FILE-001']);
    expect(f.issues[0]?.message).toMatch(/array 'tokenizer.ggml.tokens'/);
  });

  it('misordered offsets → F-FILE-003 "tensor has offset X, expected Y"', () => {
    // Swap the offsets of a.weight (0) and b.weight (96): ggml requires Σ pad(nbytes) order.
    const aAt = offsetFieldOf(good, 'a.weight', 2);
    const bAt = offsetFieldOf(good, 'b.weight', 1);
    const dv = new DataView(good.buffer, good.byteOffset);
    const swapped = patchU64(patchU64(good, aAt, dv.getBigUint64(bAt, true)), bAt, dv.getBigUint64(aAt, true));
    const f = read(swapped);
    expect(codes(f)).toEqual(['F-FILE-003', 'F-FILE-003']);
    expect(f.issues[0]).toMatchObject({
      tensor: 'a.weight',
      fatal: false,
      message: expect.stringMatching(/tensor has offset 96, expected 0/),
    });
    expect(f.issues[1]?.message).toMatch(/tensor has offset 0, expected 96/);
  });

  it('an offset that is not a multiple of the alignment → F-FILE-003', () => {
    const f = read(patchU64(good, offsetFieldOf(good, 'b.weight', 1), 100n));
    expect(codes(f)).toEqual(['F-FILE-003']);
    expect(f.issues[0]?.message).toMatch(/offset 100 is not a multiple of the alignment 32/);
  });

  it('data longer than dtype × shape (a mutant converter) → F-FILE-003 on every later tensor, spanBytes shows the slack', () => {
    const model = smallModel();
    const first = model.tensors[0] as GgufTensorIn;
    model.tensors[0] = { ...first, data: new Uint8Array(first.data.length + 40) };
    const f = read(encodeGguf(model));
    // ggml's rule: tensor i must be at Σ pad(nbytes_j) over the declared sizes, so every later tensor is displaced.
    expect(codes(f)).toEqual(['F-FILE-003', 'F-FILE-003', 'F-FILE-003']);
    expect(f.issues.map((i) => i.tensor)).toEqual(['b.weight', 'c.weight', 'd.weight']);
    expect(f.issues[0]?.message).toMatch(/tensor has offset 128, expected 96/);
    expect(f.tensors[0]).toMatchObject({ byteLength: 68, spanBytes: 128 });
  });

  it('unknown and unsupported ggml types → F-FILE-001; the layout is still checked past a known-size type', () => {
    const model = smallModel();
    model.tensors[0] = { ...(model.tensors[0] as GgufTensorIn), rawType: 99 };
    const unknown = read(encodeGguf(model));
    expect(codes(unknown)).toEqual(['F-FILE-001']);
    expect(unknown.issues[0]?.message).toMatch(/unknown ggml type 99/);
    expect(unknown.tensors.map((t) => t.name)).toEqual(['b.weight', 'c.weight', 'd.weight']);

    // 64 elements of IQ4_NL (id 20) are 2 × 18 bytes — but a.weight's data is 68 bytes, so b.weight is not where ggml expects it.
    model.tensors[0] = { ...(model.tensors[0] as GgufTensorIn), rawType: 20 };
    const unsupported = read(encodeGguf(model));
    expect(codes(unsupported)).toEqual(['F-FILE-001', 'F-FILE-003', 'F-FILE-003', 'F-FILE-003']);
    expect(unsupported.issues[0]?.message).toMatch(/IQ4_NL \(20\) is not supported/);
    expect(unsupported.issues[1]?.message).toMatch(/tensor has offset 96, expected 64/);
  });

  it('ne[0] not a multiple of the block size → F-FILE-001', () => {
    const model = smallModel();
    model.tensors[0] = { ...(model.tensors[0] as GgufTensorIn), shape: [4, 16] }; // 64 elements, rows of 16
    const f = read(encodeGguf(model));
    expect(codes(f)).toContain('F-FILE-001');
    expect(f.issues[0]?.message).toMatch(/ne\[0\] = 16 is not a multiple of the Q8_0 block size 32/);
    expect(f.tensors.find((t) => t.name === 'a.weight')).toBeUndefined();
  });

  it('duplicate keys and tensor names, bad bools, bad alignment, long names, too many dims → F-FILE-001', () => {
    const base = smallModel();
    const cases: [string, (m: ReturnType<typeof smallModel>) => void, RegExp][] = [
      ['duplicate key', (m) => m.kvs.push({ key: 'test.u8', type: 'u8', value: 1 }), /duplicate metadata key 'test.u8'/],
      ['duplicate tensor', (m) => m.tensors.push({ ...(m.tensors[1] as GgufTensorIn) }), /b.weight: duplicate tensor name/],
      ['bool 2', (m) => m.kvs.push({ key: 'x.flag', type: 'bool', value: 2 }), /bool byte is 2/],
      ['alignment type', (m) => m.kvs.push({ key: 'general.alignment', type: 'u64', value: 32 }), /must be of type UINT32, got u64/],
      ['alignment value', (m) => m.kvs.push({ key: 'general.alignment', type: 'u32', value: 48 }), /48 is not a power of two/],
      ['name ≥ 64 bytes', (m) => ((m.tensors[1] as GgufTensorIn).name = 'n'.repeat(64)), /name is 64 bytes, ggml allows at most 63/],
    ];
    for (const [label, mutate, message] of cases) {
      const m = structuredClone(base);
      mutate(m);
      const f = read(encodeGguf(m));
      expect(codes(f), label).toContain('F-FILE-001');
      expect(f.issues.map((i) => `${i.tensor ?? ''}: ${i.message}`).join('\n'), label).toMatch(message);
      expect(
        f.issues.every((i) => !i.fatal),
        label,
      ).toBe(true);
    }
    const fiveDims = read(
      encodeGguf({ kvs: [], tensors: [{ name: 't', shape: [1, 1, 1, 1, 32], dtype: 'F32', data: new Uint8Array(128) }] }),
    );
    expect(codes(fiveDims)).toEqual(['F-FILE-001']);
    expect(fiveDims.issues[0]?.message).toMatch(/n_dims 5 exceeds GGML_MAX_DIMS 4/);
  });

  it('a negative ne or an overflowing element count → F-FILE-001', () => {
    const m = smallModel();
    const bytes = encodeGguf(m);
    const neAt = offsetFieldOf(bytes, 'b.weight', 1) - 4 - 8;
    const negative = read(patchU64(bytes, neAt, 2n ** 64n - 1n));
    expect(negative.issues.map((i) => i.message).join()).toMatch(/ne\[0\] = -1 is negative/);
    const dAt = offsetFieldOf(bytes, 'd.weight', 4) - 4 - 32;
    const big = patchU64(patchU64(bytes, dAt, 2n ** 40n), dAt + 8, 2n ** 40n);
    expect(
      read(big)
        .issues.map((i) => i.message)
        .join(),
    ).toMatch(/element count overflows int64/);
  });
});

describe('fuzz: mutated and truncated GGUF files never make readGguf throw', () => {
  const good = encodeGguf(smallModel());
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(good.length - 1), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('u64' as const), at: fc.nat(good.length - 8), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    fc.record({ kind: fc.constant('small-u64' as const), at: fc.nat(good.length - 8), value: fc.bigInt({ min: 0n, max: 4096n }) }),
    fc.record({ kind: fc.constant('u32' as const), at: fc.nat(good.length - 4), value: fc.nat(0xffffffff) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(good.length) }),
    fc.record({ kind: fc.constant('splice' as const), at: fc.nat(good.length), bytes: fc.uint8Array({ maxLength: 24 }) }),
  );

  function apply(bytes: Uint8Array, m: Mutation): Uint8Array {
    switch (m.kind) {
      case 'flip': {
        const out = bytes.slice();
        out[m.at % out.length] = (out[m.at % out.length] as number) ^ m.xor;
        return out;
      }
      case 'u64':
      case 'small-u64':
        return bytes.length >= m.at + 8 ? patchU64(bytes, m.at, m.value) : bytes;
      case 'u32':
        return bytes.length >= m.at + 4 ? patchU32(bytes, m.at, m.value) : bytes;
      case 'truncate':
        return bytes.subarray(0, Math.min(m.at, bytes.length));
      case 'splice': {
        const at = Math.min(m.at, bytes.length);
        const out = new Uint8Array(bytes.length + m.bytes.length);
        out.set(bytes.subarray(0, at));
        out.set(m.bytes, at);
        out.set(bytes.subarray(at), at + m.bytes.length);
        return out;
      }
    }
  }
  type Mutation =
    | { kind: 'flip'; at: number; xor: number }
    | { kind: 'u64' | 'small-u64'; at: number; value: bigint }
    | { kind: 'u32'; at: number; value: number }
    | { kind: 'truncate'; at: number }
    | { kind: 'splice'; at: number; bytes: Uint8Array };

  it('2,500 random mutations: no throw, only F-FILE codes, flagged-free tensors are readable', () => {
    let withIssues = 0;
    const seen = new Set<FileCode>();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        const bytes = ms.reduce(apply, good);
        const src = new BufferByteSource(bytes);
        const f = readGguf(src); // must not throw
        for (const i of f.issues) {
          seen.add(i.code);
          expect(i.evidence?.internal, i.message).toBeUndefined();
        }
        if (f.issues.length > 0) withIssues++;
        const outOfBounds = new Set(f.issues.filter((i) => i.code === 'F-FILE-002').map((i) => i.tensor));
        for (const t of f.tensors) {
          if (outOfBounds.has(t.name)) continue;
          expect(readTensorF32(src, t).length).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
      }),
      { numRuns: 2500, seed: 20261130 },
    );
    expect(withIssues).toBeGreaterThan(1000);
    expect([...seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003']);
  });
});
