/**
 * Seed files and byte-level mutations shared by `make fuzz` (fuzz/child.ts) and the in-suite fuzz test
 * (test/formats/fuzz.test.ts): one small valid file per format, built in code, the offsets of the count
 * and offset fields where a spliced u64 does the most damage, and fast-check arbitraries of mutations.
 */
import fc from 'fast-check';
import { crc32 } from '../src/formats/apr/crc32.js';
import { readApr } from '../src/formats/apr/reader.js';
import { aprTensorFromF32, encodeApr } from '../src/formats/apr/writer.js';
import { BufferByteSource } from '../src/formats/byte-source.js';
import { quantize } from '../src/formats/codecs/index.js';
import { encodeGguf } from '../src/formats/gguf/writer.js';
import { encodeSafetensors, f32Bytes } from '../src/formats/safetensors/writer.js';

const values = (n: number, seed: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * (1 + (i % 3)));

/** A copy of `bytes` with the little-endian u64 at `at` replaced. */
export function u64At(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(at, v, true);
  return out;
}

// --- the three seed files -------------------------------------------------------------------------

const GGUF_DIMS = { 'a.weight': 2, 'b.weight': 1, 'c.weight': 1, 'd.weight': 2 } as const;

/** A GGUF v3 with an alignment key, string and f32 arrays, and Q8_0 / F32 / Q4_0 / F16 tensors. */
export const ggufGood: Uint8Array = encodeGguf({
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

/** An APR v2 with nested JSON metadata and F32 / APR_Q4 / APR_Q8 / F16 / Q4_K (padded row) tensors. */
export const aprGood: Uint8Array = encodeApr({
  metadata: {
    model_type: 'llama',
    architecture: 'llama',
    hidden_size: 8,
    num_layers: 1,
    rope_theta: 10000,
    name: null,
    tokenizer: { vocabulary: ['a', 'b'] },
  },
  tensors: [
    aprTensorFromF32('model.embed_tokens.weight', [4, 8], values(32, 1), 'F32'),
    aprTensorFromF32('model.layers.0.mlp.up_proj.weight', [3, 11], values(33, 2), 'APR_Q4'),
    aprTensorFromF32('model.layers.0.self_attn.q_proj.weight', [5, 7], values(35, 3), 'APR_Q8'),
    aprTensorFromF32('model.norm.weight', [8], values(8, 4), 'F16'),
    { name: 'model.layers.0.mlp.down_proj.weight', shape: [1, 300], dtype: 'Q4_K', data: quantize('Q4_K', new Float32Array(512)) },
  ],
});

/** A safetensors file with float, integer, bool and rank-0 tensors and a `__metadata__`. */
export const stGood: Uint8Array = encodeSafetensors(
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

/** Byte offsets of ggufGood's u64 count, length, ne and offset fields. */
export function ggufFields(): number[] {
  const fields = [8, 16]; // tensor_count, metadata_kv_count
  const buf = Buffer.from(ggufGood);
  for (const key of ['general.architecture', 'tokenizer.ggml.tokens', 'tokenizer.ggml.scores']) {
    const at = buf.indexOf(key);
    fields.push(at - 8); // key length
    if (key.startsWith('tokenizer')) fields.push(at + key.length + 4 + 4); // array count
  }
  for (const [name, nDims] of Object.entries(GGUF_DIMS)) {
    const at = buf.indexOf(name);
    fields.push(at - 8); // name length
    for (let d = 0; d < nDims; d++) fields.push(at + name.length + 4 + 8 * d); // ne[d]
    fields.push(at + name.length + 4 + 8 * nDims + 4); // offset
  }
  return fields;
}

/** Byte offsets of aprGood's u64 header offsets and each index entry's dims, offset and size_bytes. */
export function aprFields(): number[] {
  const fields = [12, 24, 32]; // metadata_offset, tensor_index_offset, data_offset (tensor_count and metadata_size are u32)
  for (const e of readApr(new BufferByteSource(aprGood)).index) {
    const dimsAt = e.entryAt + 2 + e.name_len + 2;
    for (let d = 0; d < e.ndim; d++) fields.push(dimsAt + 8 * d);
    fields.push(dimsAt + 8 * e.ndim, dimsAt + 8 * e.ndim + 8); // offset, size_bytes
  }
  return fields;
}

/** Re-seal both APR CRCs (header and footer), so a mutation reaches the checks behind them. */
export function reseal(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 68) return bytes;
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  dv.setUint32(40, crc32(out.subarray(44, 64), crc32(out.subarray(0, 40))), true);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

/** Replace the k-th integer in the safetensors JSON header with `text`; fix the header length unless told not to. */
export function spliceJsonNumber(bytes: Uint8Array, k: number, text: string, fixLength: boolean): Uint8Array {
  if (bytes.length < 8) return bytes;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + n > bytes.length) return bytes;
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const numbers = [...header.matchAll(/\d+/g)];
  if (numbers.length === 0) return bytes;
  // numbers is non-empty (checked above), so the modulo index is in range.
  const m = numbers[k % numbers.length] as RegExpMatchArray;
  const at = m.index ?? 0;
  const edited = new TextEncoder().encode(header.slice(0, at) + text + header.slice(at + m[0].length));
  const out = new Uint8Array(8 + edited.length + (bytes.length - 8 - n));
  out.set(bytes.subarray(0, 8));
  out.set(edited, 8);
  out.set(bytes.subarray(8 + n), 8 + edited.length);
  if (fixLength) new DataView(out.buffer).setBigUint64(0, BigInt(edited.length), true);
  return out;
}

// --- mutations ------------------------------------------------------------------------------------

/** One edit of a file's bytes. Positions are absolute; `apply` ignores an edit that does not fit. */
export type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'u64'; at: number; value: bigint }
  | { kind: 'field'; field: number; value: bigint }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; at: number; bytes: Uint8Array }
  | { kind: 'json'; k: number; text: string; fixLength: boolean };

/** u64 values that sit on the edges: 0, 1, small, 2^31, 2^32−1, 2^53±1, 2^60, 2^63, 2^64−1, anything. */
export const u64Value: fc.Arbitrary<bigint> = fc.oneof(
  fc.constantFrom(
    0n,
    1n,
    7n,
    64n,
    2n ** 31n,
    2n ** 32n - 1n,
    2n ** 53n - 1n,
    2n ** 53n + 1n,
    2n ** 60n,
    2n ** 62n,
    2n ** 63n,
    2n ** 64n - 1n,
  ),
  fc.bigInt({ min: 0n, max: 4096n }),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

/** Mutations of a `size`-byte file with `fieldCount` known fields; `withJson` adds safetensors JSON-number splices. */
export function mutations(size: number, fieldCount: number, withJson: boolean): fc.Arbitrary<Mutation> {
  const base: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(size - 1), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('u64' as const), at: fc.nat(size - 8), value: u64Value }),
    fc.record({ kind: fc.constant('field' as const), field: fc.nat(fieldCount - 1), value: u64Value }),
    fc.record({
      kind: fc.constant('u32' as const),
      at: fc.nat(size - 4),
      value: fc.oneof(fc.constantFrom(0, 1, 0xffffffff, 0x80000000), fc.nat(0xffffffff)),
    }),
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

/** `bytes` with one mutation applied (a copy; the input is never modified). */
export function apply(bytes: Uint8Array, m: Mutation, fields: readonly number[]): Uint8Array {
  switch (m.kind) {
    case 'flip': {
      if (bytes.length === 0) return bytes;
      const out = bytes.slice();
      const at = m.at % out.length;
      out[at] = (out[at] ?? 0) ^ m.xor;
      return out;
    }
    case 'u64':
      return bytes.length >= m.at + 8 ? u64At(bytes, m.at, m.value) : bytes;
    case 'field': {
      const at = fields[m.field % fields.length] ?? 0;
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

/**
 * Files made by 1–3 mutations of `good`, half of them re-sealed (APR CRCs) when `sealable`. The usual
 * generator for the in-suite test and one of several for `make fuzz`.
 */
export function mutatedSeed(
  good: Uint8Array,
  fields: readonly number[],
  options: { json?: boolean; sealable?: boolean } = {},
): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      ms: fc.array(mutations(good.length, fields.length, options.json ?? false), { minLength: 1, maxLength: 3 }),
      reseal: fc.boolean(),
    })
    .map(({ ms, reseal: doReseal }) => {
      const bytes = ms.reduce((b, m) => apply(b, m, fields), good);
      return options.sealable && doReseal ? reseal(bytes) : bytes;
    });
}
