/**
 * Malformed-input fuzzing for the three readers: 10,000 mutated or truncated files per format, built
 * from a small valid file made in code. Every read must return (no exception), within a time bound,
 * with every issue carrying a file code and no internal error; every tensor the reader did not flag
 * as out of bounds must decode. Plus explicit huge-count / huge-size cases that must be rejected fast
 * without big allocations.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/formats/apr/crc32.js';
import { readApr, readAprTensorF32 } from '../../src/formats/apr/reader.js';
import { aprTensorFromF32, encodeApr } from '../../src/formats/apr/writer.js';
import { BufferByteSource, type ByteSource } from '../../src/formats/byte-source.js';
import { canDequantize, quantize } from '../../src/formats/codecs/index.js';
import { readGguf, readTensorF32 } from '../../src/formats/gguf/reader.js';
import { encodeGguf } from '../../src/formats/gguf/writer.js';
import { readModelFile } from '../../src/formats/read-model.js';
import { readSafetensors, readSafetensorsTensorF32 } from '../../src/formats/safetensors/reader.js';
import { encodeSafetensors, f32Bytes } from '../../src/formats/safetensors/writer.js';
import type { FileCode, ModelFile, TensorEntry } from '../../src/formats/types.js';

const RUNS = 10_000;
/** Per-read bound: the small files here read in well under a millisecond; 50 ms leaves room for GC pauses. */
const READ_LIMIT_MS = 50;
/**
 * A read over the limit is repeated this many times and fails only if every attempt is over: a slow
 * path in a reader is deterministic, a GC pause or a busy shared core is not.
 */
const READ_ATTEMPTS = 3;
const FILE_CODES: ReadonlySet<string> = new Set<FileCode>(['F-FILE-001', 'F-FILE-002', 'F-FILE-003', 'F-FILE-004']);

const values = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * (1 + (i % 3)));

function u64At(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(at, v, true);
  return out;
}

// --- the three seed files -------------------------------------------------------------------------

const GGUF_NAMES = ['a.weight', 'b.weight', 'c.weight', 'd.weight'] as const;
const ggufGood = encodeGguf({
  kvs: [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.alignment', type: 'u32', value: 32 },
    { key: 'llama.block_count', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: ['a', 'bb', '<eos>'] },
    { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: [0, -1, 2] },
  ],
  tensors: [
    { name: 'a.weight', shape: [2, 32], dtype: 'Q8_0', data: quantize('Q8_0', values(64, 1)) },
    { name: 'b.weight', shape: [8], dtype: 'F32', data: quantize('F32', values(8, 2)) },
    { name: 'c.weight', shape: [32], dtype: 'Q4_0', data: quantize('Q4_0', values(32, 3)) },
    { name: 'd.weight', shape: [3, 4], dtype: 'F16', data: quantize('F16', values(12, 4)) },
  ],
});

const aprGood = encodeApr({
  metadata: { model_type: 'llama', architecture: 'llama', hidden_size: 8, num_layers: 1, rope_theta: 10000, name: null, tokenizer: { vocabulary: ['a', 'b'] } },
  tensors: [
    aprTensorFromF32('model.embed_tokens.weight', [4, 8], values(32, 1), 'F32'),
    aprTensorFromF32('model.layers.0.mlp.up_proj.weight', [3, 11], values(33, 2), 'APR_Q4'),
    aprTensorFromF32('model.layers.0.self_attn.q_proj.weight', [5, 7], values(35, 3), 'APR_Q8'),
    aprTensorFromF32('model.norm.weight', [8], values(8, 4), 'F16'),
    { name: 'model.layers.0.mlp.down_proj.weight', shape: [1, 300], dtype: 'Q4_K', data: quantize('Q4_K', new Float32Array(512)) },
  ],
});

const stGood = encodeSafetensors(
  [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [4, 8], data: f32Bytes(values(32, 1)) },
    { name: 'model.norm.weight', dtype: 'BF16', shape: [8], data: quantize('BF16', values(8, 2)) },
    { name: 'lm_head.weight', dtype: 'F16', shape: [2, 8], data: quantize('F16', values(16, 3)) },
    { name: 'position_ids', dtype: 'I64', shape: [1, 4], data: new Uint8Array(BigInt64Array.from([0n, 1n, 2n, 3n]).buffer) },
    { name: 'mask', dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
    { name: 'scalar', dtype: 'F32', shape: [], data: f32Bytes(Float32Array.of(3)) },
  ],
  { format: 'pt' },
);

// --- count and offset fields of each seed file, where spliced u64s do the most damage --------------

function ggufFields(): number[] {
  const fields = [8, 16]; // tensor_count, metadata_kv_count
  const buf = Buffer.from(ggufGood);
  for (const key of ['general.architecture', 'tokenizer.ggml.tokens', 'tokenizer.ggml.scores']) {
    const at = buf.indexOf(key);
    fields.push(at - 8); // key length
    if (key.startsWith('tokenizer')) fields.push(at + key.length + 4 + 4); // array count
  }
  const dims: Record<string, number> = { 'a.weight': 2, 'b.weight': 1, 'c.weight': 1, 'd.weight': 2 };
  for (const name of GGUF_NAMES) {
    const at = buf.indexOf(name);
    const nDims = dims[name] as number;
    fields.push(at - 8); // name length
    for (let d = 0; d < nDims; d++) fields.push(at + name.length + 4 + 8 * d); // ne[d]
    fields.push(at + name.length + 4 + 8 * nDims + 4); // offset
  }
  return fields;
}

function aprFields(): number[] {
  const fields = [12, 24, 32]; // metadata_offset, tensor_index_offset, data_offset (tensor_count and metadata_size are u32)
  for (const e of readApr(new BufferByteSource(aprGood)).index) {
    const dimsAt = e.entryAt + 2 + e.name_len + 2;
    for (let d = 0; d < e.ndim; d++) fields.push(dimsAt + 8 * d);
    fields.push(dimsAt + 8 * e.ndim, dimsAt + 8 * e.ndim + 8); // offset, size_bytes
  }
  return fields;
}

/** Re-seal both APR CRCs, so a mutation reaches the checks behind them. */
function reseal(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 68) return bytes;
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  dv.setUint32(40, crc32(out.subarray(44, 64), crc32(out.subarray(0, 40))), true);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

/** Replace the k-th integer in the safetensors JSON header with `text`; fix the header length unless told not to. */
function spliceJsonNumber(bytes: Uint8Array, k: number, text: string, fixLength: boolean): Uint8Array {
  if (bytes.length < 8) return bytes;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + n > bytes.length) return bytes;
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const numbers = [...header.matchAll(/\d+/g)];
  if (numbers.length === 0) return bytes;
  const m = numbers[k % numbers.length] as RegExpMatchArray;
  const at = m.index as number;
  const edited = new TextEncoder().encode(header.slice(0, at) + text + header.slice(at + m[0].length));
  const out = new Uint8Array(8 + edited.length + (bytes.length - 8 - n));
  out.set(bytes.subarray(0, 8));
  out.set(edited, 8);
  out.set(bytes.subarray(8 + n), 8 + edited.length);
  if (fixLength) new DataView(out.buffer).setBigUint64(0, BigInt(edited.length), true);
  return out;
}

// --- mutations ------------------------------------------------------------------------------------

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'u64'; at: number; value: bigint }
  | { kind: 'field'; field: number; value: bigint }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; at: number; bytes: Uint8Array }
  | { kind: 'json'; k: number; text: string; fixLength: boolean };

/** u64 values that sit on the edges: 0, 1, small, 2^31, 2^32−1, 2^53±1, 2^60, 2^63, 2^64−1, anything. */
const u64Value = fc.oneof(
  fc.constantFrom(0n, 1n, 7n, 64n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 60n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 4096n }),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

function mutations(size: number, fieldCount: number, withJson: boolean): fc.Arbitrary<Mutation> {
  const base: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(size - 1), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('u64' as const), at: fc.nat(size - 8), value: u64Value }),
    fc.record({ kind: fc.constant('field' as const), field: fc.nat(fieldCount - 1), value: u64Value }),
    fc.record({ kind: fc.constant('u32' as const), at: fc.nat(size - 4), value: fc.oneof(fc.constantFrom(0, 1, 0xffffffff, 0x80000000), fc.nat(0xffffffff)) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(size) }),
    fc.record({ kind: fc.constant('splice' as const), at: fc.nat(size), bytes: fc.uint8Array({ maxLength: 24 }) }),
  ];
  if (withJson) {
    const numberText = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
      fc.constantFrom('0', '1', '-1', '1.5', '1e3', '9007199254740993', '18446744073709551616', '4294967296', 'null', '"8"'),
    );
    base.push(fc.record({ kind: fc.constant('json' as const), k: fc.nat(100), text: numberText, fixLength: fc.boolean() }));
  }
  return fc.oneof(...base);
}

function apply(bytes: Uint8Array, m: Mutation, fields: number[]): Uint8Array {
  switch (m.kind) {
    case 'flip': {
      if (bytes.length === 0) return bytes;
      const out = bytes.slice();
      const at = m.at % out.length;
      out[at] = (out[at] as number) ^ m.xor;
      return out;
    }
    case 'u64':
      return bytes.length >= m.at + 8 ? u64At(bytes, m.at, m.value) : bytes;
    case 'field': {
      const at = fields[m.field] as number;
      return bytes.length >= at + 8 ? u64At(bytes, at, m.value) : bytes;
    }
    case 'u32': {
      if (bytes.length < m.at + 4) return bytes;
      const out = bytes.slice();
      new DataView(out.buffer).setUint32(m.at, m.value, true);
      return out;
    }
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
    case 'json':
      return spliceJsonNumber(bytes, m.k, m.text, m.fixLength);
  }
}

// --- the property ---------------------------------------------------------------------------------

interface Stats {
  withIssues: number;
  seen: Set<FileCode>;
  decodedTensors: number;
  slowestMs: number;
}

function fail(message: string): never {
  throw new Error(message);
}

/** Read, time, and check one mutated file (plain throws instead of expect(): 10,000 runs per format). */
function checkOne(bytes: Uint8Array, readFile: (src: ByteSource) => ModelFile, decode: (src: ByteSource, t: TensorEntry) => Float32Array, stats: Stats): void {
  const src = new BufferByteSource(bytes);
  let f: ModelFile | undefined;
  let ms = Infinity;
  for (let attempt = 0; attempt < READ_ATTEMPTS && ms >= READ_LIMIT_MS; attempt++) {
    const t0 = performance.now();
    f = readFile(src);
    ms = Math.min(ms, performance.now() - t0);
  }
  if (f === undefined || ms >= READ_LIMIT_MS) fail(`read took ${ms.toFixed(1)} ms (limit ${READ_LIMIT_MS}) for a ${bytes.length}-byte file, ${READ_ATTEMPTS} times`);
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  for (const i of f.issues) {
    if (!FILE_CODES.has(i.code)) fail(`issue without a file code: ${JSON.stringify(i)}`);
    if (typeof i.message !== 'string' || i.message.length === 0) fail(`issue without a message: ${i.code}`);
    if (i.evidence?.['internal'] !== undefined) fail(`reader bug caught as an issue: ${i.message}`);
    stats.seen.add(i.code);
  }
  if (f.issues.length > 0) stats.withIssues++;
  if (f.tensors.length > 0 && f.issues.some((i) => i.fatal)) fail('a fatal issue must leave no tensor table');
  const outOfBounds = new Set(f.issues.filter((i) => i.code === 'F-FILE-002').map((i) => i.tensor));
  for (const t of f.tensors) {
    if (outOfBounds.has(t.name) || !canDequantize(t.dtype)) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (decode(src, t).length !== n) fail(`tensor '${t.name}' decoded to the wrong length`);
    stats.decodedTensors++;
  }
}

function fuzz(
  good: Uint8Array,
  fields: number[],
  readFile: (src: ByteSource) => ModelFile,
  decode: (src: ByteSource, t: TensorEntry) => Float32Array,
  options: { seed: number; json?: boolean; reseal?: boolean },
): Stats {
  const stats: Stats = { withIssues: 0, seen: new Set(), decodedTensors: 0, slowestMs: 0 };
  checkOne(good, readFile, decode, stats);
  if (stats.withIssues !== 0) fail('the seed file must read cleanly');
  const arb = fc.record({ ms: fc.array(mutations(good.length, fields.length, options.json ?? false), { minLength: 1, maxLength: 3 }), reseal: fc.boolean() });
  fc.assert(
    fc.property(arb, ({ ms, reseal: doReseal }) => {
      let bytes = ms.reduce((b, m) => apply(b, m, fields), good);
      if (options.reseal && doReseal) bytes = reseal(bytes);
      checkOne(bytes, readFile, decode, stats);
    }),
    { numRuns: RUNS, seed: options.seed },
  );
  return stats;
}

describe(`fuzz: ${RUNS.toLocaleString('en')} mutated or truncated files per format`, () => {
  it('GGUF (readGguf)', () => {
    const s = fuzz(ggufGood, ggufFields(), readGguf, readTensorF32, { seed: 20261201 });
    expect(s.withIssues).toBeGreaterThan(RUNS / 2);
    expect([...s.seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003']);
    expect(s.decodedTensors).toBeGreaterThan(RUNS / 2);
  });

  it('APR v2 (readApr), half of the mutants re-sealed so they get past the CRCs', () => {
    const s = fuzz(aprGood, aprFields(), (src) => readApr(src), readAprTensorF32, { seed: 20261202, reseal: true });
    expect(s.withIssues).toBeGreaterThan(RUNS * 0.8); // the rest: re-sealed edits of padding, or no-op edits
    expect([...s.seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003', 'F-FILE-004']);
    expect(s.decodedTensors).toBeGreaterThan(RUNS / 2);
  });

  it('safetensors (readSafetensors), including spliced JSON numbers', () => {
    const s = fuzz(stGood, [0], readSafetensors, readSafetensorsTensorF32, { seed: 20261203, json: true });
    expect(s.withIssues).toBeGreaterThan(RUNS / 2);
    expect([...s.seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003']);
    expect(s.decodedTensors).toBeGreaterThan(RUNS / 2);
  });

  it('readModelFile on any of them, or random bytes, never throws', () => {
    const seeds = [ggufGood, aprGood, stGood];
    fc.assert(
      fc.property(fc.nat(2), fc.array(mutations(64, 1, false), { maxLength: 3 }), fc.uint8Array({ maxLength: 64 }), (which, ms, junk) => {
        const f = readModelFile(new BufferByteSource(ms.reduce((b, m) => apply(b, m, [0]), seeds[which] as Uint8Array)));
        for (const i of f.issues) if (!FILE_CODES.has(i.code)) fail(i.code);
        const g = readModelFile(new BufferByteSource(junk));
        if (g.format === 'unknown' && g.issues[0]?.code !== 'F-FILE-001') fail('unknown format without F-FILE-001');
      }),
      { numRuns: 1000, seed: 20261204 },
    );
  });
});

describe('huge declared counts and sizes are rejected fast, without big allocations', () => {
  /** Read once, returning the file, the time taken and how much the heap + array buffers grew. */
  function measure<T>(read: () => T): { f: T; ms: number; grewBytes: number } {
    const before = process.memoryUsage();
    const t0 = performance.now();
    const f = read();
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    return { f, ms, grewBytes: after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers) };
  }
  const SMALL = 16 * 2 ** 20;

  it('a GGUF declaring 2^60 tensors', () => {
    const { f, ms, grewBytes } = measure(() => readGguf(new BufferByteSource(u64At(ggufGood, 8, 2n ** 60n))));
    expect(f.issues).toMatchObject([{ code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/implausible header: tensor_count 1152921504606846976/) }]);
    expect(ms).toBeLessThan(READ_LIMIT_MS);
    expect(grewBytes).toBeLessThan(SMALL);
  });

  it('a 2^62-element tensor in GGUF, APR and safetensors', () => {
    const d = 2 ** 31;
    const gguf = measure(() => readGguf(new BufferByteSource(encodeGguf({ kvs: [], tensors: [{ name: 'x', shape: [d, d], dtype: 'F32', data: new Uint8Array(4) }] }))));
    expect(gguf.f.issues).toMatchObject([{ code: 'F-FILE-002', tensor: 'x', message: expect.stringMatching(/runs past the end of the file/) }]);
    expect(gguf.f.tensors).toEqual([]);
    const apr = measure(() => readApr(new BufferByteSource(encodeApr({ tensors: [{ name: 'x', shape: [d, d], dtype: 'F32', data: new Uint8Array(4) }] }))));
    expect(apr.f.issues).toMatchObject([{ code: 'F-FILE-001', tensor: 'x', message: expect.stringMatching(/4611686018427387904 elements, more than 2\^53/) }]);
    const st = measure(() => readSafetensors(new BufferByteSource(encodeSafetensors([{ name: 'x', shape: [d, d], dtype: 'F32', data: new Uint8Array(4) }]))));
    // 2^62 F32 elements are 2^64 bytes: usize overflow in the reference's own check
    expect(st.f.issues).toMatchObject([{ code: 'F-FILE-001', tensor: 'x', message: expect.stringMatching(/overflows usize \(ValidationOverflow\)/) }]);
    for (const r of [gguf, apr, st]) {
      expect(r.ms).toBeLessThan(READ_LIMIT_MS);
      expect(r.grewBytes).toBeLessThan(SMALL);
    }
  });

  it('an APR with tensor_count 2^32 − 1 (CRCs valid)', () => {
    const bytes = aprGood.slice();
    new DataView(bytes.buffer).setUint32(8, 2 ** 32 - 1, true);
    const { f, ms, grewBytes } = measure(() => readApr(new BufferByteSource(reseal(bytes))));
    expect(f.issues).toMatchObject([{ code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/implausible tensor_count 4294967295/) }]);
    expect(ms).toBeLessThan(READ_LIMIT_MS);
    expect(grewBytes).toBeLessThan(SMALL);
  });

  it('a safetensors header length of 2^63', () => {
    const { f, ms, grewBytes } = measure(() => readSafetensors(new BufferByteSource(u64At(stGood, 0, 2n ** 63n))));
    expect(f.issues).toMatchObject([{ code: 'F-FILE-001', fatal: true, message: 'header length 9223372036854775808 exceeds the limit of 100000000 bytes (HeaderTooLarge)' }]);
    expect(ms).toBeLessThan(READ_LIMIT_MS);
    expect(grewBytes).toBeLessThan(SMALL);
  });
});
