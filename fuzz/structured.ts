/**
 * Structure-aware generators: whole files built from scratch by lenient encoders that write whatever
 * they are told — counts that disagree with what follows, negative and overflowing dims, offsets that
 * overlap, hop back or ignore the alignment, alignment keys that lie, names that are duplicates or not
 * UTF-8, metadata arrays and JSON nested hundreds deep, sections past the end. The writers in
 * src/formats refuse to produce most of these; a converter under test is not so polite.
 */
import fc from 'fast-check';
import { crc32 } from '../src/formats/apr/crc32.js';
import { SAFETENSORS_DTYPES } from '../src/formats/safetensors/dtypes.js';
import { u64Value } from './seeds.js';

/** Append-only little-endian byte builder that never validates. */
class Bytes {
  private buf = new Uint8Array(256);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u8(v: number): this {
    this.room(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.room(2);
    new DataView(this.buf.buffer).setUint16(this.length, v & 0xffff, true);
    this.length += 2;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    new DataView(this.buf.buffer).setUint32(this.length, v >>> 0, true);
    this.length += 4;
    return this;
  }
  u64(v: bigint): this {
    this.room(8);
    new DataView(this.buf.buffer).setBigUint64(this.length, BigInt.asUintN(64, v), true);
    this.length += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  zeros(n: number): this {
    this.room(n);
    this.length += n; // the buffer is zero-filled past length
    return this;
  }
  padTo(alignment: number): this {
    return this.zeros((alignment - (this.length % alignment)) % alignment);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

/**
 * Tensor and key names: a small pool (so duplicates are common), invalid UTF-8 (lone continuation bytes,
 * truncated sequences, encoded surrogates, overlong NUL), over-long names, the empty name, and NULs.
 */
export const rawName: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom('a.weight', 'b.weight', 'blk.0.attn_q.weight', 'model.norm.weight', 'lm_head.weight', '__metadata__')
      .map((s) => utf8.encode(s)),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom([0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0x00, 0x62])
      .map((b) => Uint8Array.from(b)),
  },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 300 }).map((n) => utf8.encode('x'.repeat(n))) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }) },
);

/** A dimension: usually small, sometimes 0, huge, ≥ 2^63 (negative as int64), or whatever u64Value gives. */
const dim: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 1n, max: 40n }) },
  { weight: 1, arbitrary: fc.constantFrom(0n, 32n, 256n, 2n ** 31n, 2n ** 32n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n - 32n) },
  { weight: 1, arbitrary: u64Value },
);

/** How an offset lies, relative to the honest one. */
type OffsetLie = 'honest' | 'misaligned' | 'overlap' | 'backwards' | 'same-as-previous' | 'huge' | 'random';
const offsetLie: fc.Arbitrary<OffsetLie> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('honest' as const) },
  { weight: 1, arbitrary: fc.constantFrom('misaligned', 'overlap', 'backwards', 'same-as-previous', 'huge', 'random' as const) },
);

function lieAbout(lie: OffsetLie, honest: bigint, previous: bigint, salt: bigint): bigint {
  switch (lie) {
    case 'honest':
      return honest;
    case 'misaligned':
      return honest + 1n + (salt % 31n);
    case 'overlap':
      return honest > 0n ? honest - 1n - (salt % honest) : honest;
    case 'backwards':
      return honest / 2n;
    case 'same-as-previous':
      return previous;
    case 'huge':
      return 2n ** 63n + salt;
    case 'random':
      return salt;
  }
}

/** How a count in a header relates to the entries that follow it. */
const countLie: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 20, 2 ** 31, 2 ** 32 - 1) },
);

/** What is left of the honest tail: all of it, cut short, or with junk appended. */
const tailLie = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ keep: 1, extra: 0 }) },
  { weight: 1, arbitrary: fc.record({ keep: fc.double({ min: 0, max: 1, noNaN: true }), extra: fc.constant(0) }) },
  { weight: 1, arbitrary: fc.record({ keep: fc.constant(1), extra: fc.integer({ min: 1, max: 200 }) }) },
);

function cutOrExtend(bytes: Uint8Array, t: { keep: number; extra: number }, from: number): Uint8Array {
  if (t.keep < 1) return bytes.subarray(0, from + Math.floor((bytes.length - from) * t.keep));
  if (t.extra === 0) return bytes;
  const out = new Uint8Array(bytes.length + t.extra);
  out.set(bytes);
  out.fill(0x5a, bytes.length);
  return out;
}

// --- GGUF ------------------------------------------------------------------------------------------

/** ggml type ids: the common valid ones often, then any id up to 50 and a few wild ones. */
const ggmlType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 3, 6, 7, 8, 10, 12, 14, 30) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 50 }) },
  { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 0x80000000, 255) },
);

/** Bytes per block and block size for the types the honest offsets are computed with. */
const GGML_GEOMETRY: Readonly<Record<number, readonly [number, number]>> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  10: [256, 84],
  12: [256, 144],
  14: [256, 210],
  30: [1, 2],
};

/** A GGUF metadata value, already encoded (type id + payload). */
interface GgufValue {
  typeId: number;
  payload: Uint8Array;
}

const ggufScalar: fc.Arbitrary<GgufValue> = fc.oneof(
  fc.record({ typeId: fc.constantFrom(0, 1, 7), payload: fc.uint8Array({ minLength: 1, maxLength: 1 }) }),
  fc.record({ typeId: fc.constantFrom(4, 5, 6), payload: fc.uint8Array({ minLength: 4, maxLength: 4 }) }),
  fc.record({ typeId: fc.constantFrom(10, 11, 12), payload: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  rawName.map((s) => ({ typeId: 8, payload: new Bytes().u64(BigInt(s.length)).bytes(s).done() })),
);

/**
 * Arrays: flat ones whose count may lie, and nests up to 40 deep (ggml refuses nesting; our reader
 * caps it at 8), including a huge declared count at the innermost level.
 */
const ggufArray: fc.Arbitrary<GgufValue> = fc
  .record({
    depth: fc.oneof(
      { weight: 4, arbitrary: fc.constant(1) },
      { weight: 2, arbitrary: fc.integer({ min: 2, max: 12 }) },
      { weight: 1, arbitrary: fc.integer({ min: 13, max: 40 }) },
    ),
    leaf: ggufScalar,
    count: fc.integer({ min: 0, max: 6 }),
    countLie: fc.oneof({ weight: 6, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: u64Value }),
    badItemType: fc.oneof(
      { weight: 9, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.integer({ min: 13, max: 0xffffffff }) },
    ),
  })
  .map(({ depth, leaf, count, countLie: lie, badItemType }) => {
    let inner = new Bytes().u32(badItemType ?? leaf.typeId).u64(lie === 0n ? BigInt(count) : lie);
    for (let i = 0; i < count; i++) inner.bytes(leaf.payload);
    let payload = inner.done();
    for (let d = 1; d < depth; d++) {
      inner = new Bytes().u32(9).u64(1n).bytes(payload);
      payload = inner.done();
    }
    return { typeId: 9, payload };
  });

const ggufKv = fc.record({
  key: rawName,
  value: fc.oneof(
    { weight: 3, arbitrary: ggufScalar },
    { weight: 2, arbitrary: ggufArray },
    { weight: 1, arbitrary: fc.record({ typeId: fc.integer({ min: 13, max: 300 }), payload: fc.uint8Array({ maxLength: 8 }) }) },
  ),
});

/** `general.alignment`: honest 32 or 64, or zero, not a power of two, huge, or another type. */
const alignmentKv = fc.oneof(
  fc.constantFrom(32, 64, 16, 1, 0, 3, 48, 2 ** 31, 2 ** 32 - 1).map((a) => ({ typeId: 4, value: a })),
  fc.constantFrom(10, 5, 8).map((typeId) => ({ typeId, value: 32 })),
);

const ggufTensor = fc.record({
  name: rawName,
  nDims: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(5, 8, 255, 2 ** 31) }),
  ne: fc.array(dim, { minLength: 0, maxLength: 4 }),
  type: ggmlType,
  offsetLie,
  salt: fc.bigInt({ min: 0n, max: 2n ** 20n }),
});

/** A GGUF file from scratch, with lies in any field. */
export const ggufStructured: fc.Arbitrary<Uint8Array> = fc
  .record({
    version: fc.oneof({ weight: 8, arbitrary: fc.constant(3) }, { weight: 1, arbitrary: fc.constantFrom(2, 1, 0, 4, 0x03000000) }),
    kvs: fc.array(ggufKv, { maxLength: 5 }),
    alignment: fc.option(alignmentKv, { freq: 2 }),
    tensors: fc.array(ggufTensor, { maxLength: 6 }),
    tensorCountLie: countLie,
    kvCountLie: countLie,
    tail: tailLie,
  })
  .map(({ version, kvs, alignment, tensors, tensorCountLie, kvCountLie, tail }) => {
    const b = new Bytes().u32(0x46554747).u32(version);
    const kvCount = kvs.length + (alignment === null ? 0 : 1);
    b.u64(BigInt(Math.max(0, tensors.length + tensorCountLie))).u64(BigInt(Math.max(0, kvCount + kvCountLie)));
    if (alignment !== null) {
      const key = utf8.encode('general.alignment');
      b.u64(BigInt(key.length)).bytes(key).u32(alignment.typeId);
      if (alignment.typeId === 10) b.u64(BigInt(alignment.value));
      else if (alignment.typeId === 8) b.u64(2n).bytes(utf8.encode('32'));
      else b.u32(alignment.value);
    }
    for (const kv of kvs) b.u64(BigInt(kv.key.length)).bytes(kv.key).u32(kv.value.typeId).bytes(kv.value.payload);
    const declared =
      alignment !== null && alignment.typeId === 4 && alignment.value > 0 && (alignment.value & (alignment.value - 1)) === 0
        ? alignment.value
        : 32;
    // An honest 2^31 alignment would need gigabytes of padding: pad to at most 256 (itself an alignment lie).
    const align = Math.min(declared, 256);
    let honest = 0n;
    let previous = 0n;
    const sizes: number[] = [];
    for (const t of tensors) {
      const ne = t.ne.slice(0, Math.min(t.nDims, 4));
      while (ne.length < Math.min(t.nDims, 4)) ne.push(1n);
      b.u64(BigInt(t.name.length)).bytes(t.name).u32(t.nDims);
      for (const n of ne) b.u64(n);
      b.u32(t.type);
      const offset = lieAbout(t.offsetLie, honest, previous, t.salt);
      b.u64(offset);
      previous = offset;
      const [block, bytes] = GGML_GEOMETRY[t.type] ?? [1, 4];
      const elements = ne.reduce((a, n) => a * n, 1n);
      // Honest data for small tensors only: a lie about a huge shape must not make a huge file.
      const size = elements < 4096n ? Number(((elements + BigInt(block) - 1n) / BigInt(block)) * BigInt(bytes)) : 64;
      sizes.push(size);
      honest += BigInt(size + ((align - (size % align)) % align));
    }
    const dataStart = b.padTo(align).length;
    for (const size of sizes) {
      for (let i = 0; i < size; i++) b.u8((i * 37 + 11) & 0xff);
      b.padTo(align);
    }
    return cutOrExtend(b.done(), tail, Math.min(dataStart, 24));
  });

// --- APR v2 ----------------------------------------------------------------------------------------

/** JSON text: an honest object, deep nests (up to tens of thousands), a huge flat array, odd scalars, not JSON. */
const jsonText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('{"model_type":"llama","hidden_size":8,"tokenizer":{"vocabulary":["a","b"]},"name":null}') },
  {
    weight: 1,
    arbitrary: fc
      .record({ depth: fc.integer({ min: 30, max: 12_000 }), open: fc.constantFrom('[', '{"k":') })
      .map(({ depth, open }) => `{"deep":${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}}`),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5_000 }).map((n) => `{"ids":[${Array.from({ length: n }, (_, i) => i).join(',')}]}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'null',
      '[]',
      '"x"',
      '1e400',
      '{"a":1e999}',
      '{"a":-0}',
      '{"__proto__":{"x":1}}',
      '{',
      '\uFEFF{}',
      '{"a":"\\ud800"}',
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ v })) },
);

const aprDtypeCode = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0, 1, 3, 4, 5, 6, 7, 8, 9, 12, 14, 30, 128, 129) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const APR_ELEMENT_BYTES: Readonly<Record<number, number>> = { 0: 4, 1: 2, 3: 8, 4: 4, 5: 8, 6: 1, 7: 1, 30: 2 };

const aprTensor = fc.record({
  name: rawName,
  dtype: aprDtypeCode,
  dims: fc.oneof(
    { weight: 8, arbitrary: fc.array(dim, { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.array(dim, { minLength: 9, maxLength: 12 }) },
  ),
  offsetLie,
  sizeLie: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: u64Value }),
  salt: fc.bigInt({ min: 0n, max: 2n ** 20n }),
});

/** An APR v2 file from scratch: header fields, metadata, index and data may all lie; CRCs usually re-sealed. */
export const aprStructured: fc.Arbitrary<Uint8Array> = fc
  .record({
    magic: fc.oneof(
      { weight: 9, arbitrary: fc.constant([0x41, 0x50, 0x52, 0x00]) },
      { weight: 1, arbitrary: fc.constantFrom([0x41, 0x50, 0x52, 0x4e], [0x41, 0x50, 0x52, 0x32]) },
    ),
    version: fc.oneof(
      { weight: 8, arbitrary: fc.constant([2, 0]) },
      { weight: 1, arbitrary: fc.constantFrom([2, 1], [1, 0], [3, 0], [255, 255]) },
    ),
    flags: fc.oneof(fc.constant(0x400), fc.constant(0x800), fc.nat(0xffff)),
    metadata: jsonText,
    tensors: fc.array(aprTensor, { maxLength: 6 }),
    sortNames: fc.boolean(),
    tensorCountLie: countLie,
    metadataSizeLie: countLie,
    sectionLie: fc.oneof(
      { weight: 6, arbitrary: fc.constant('honest' as const) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('metadata-in-header', 'index-in-metadata', 'data-in-index', 'misaligned', 'past-end' as const),
      },
    ),
    seal: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    tail: tailLie,
  })
  .map(({ magic, version, flags, metadata, tensors, sortNames, tensorCountLie, metadataSizeLie, sectionLie, seal, tail }) => {
    const ordered = sortNames ? [...tensors].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))) : tensors;
    const meta = utf8.encode(metadata);
    const metaOffset = 64;
    const index = new Bytes();
    let honest = 0n;
    let previous = 0n;
    const sizes: number[] = [];
    for (const t of ordered) {
      const name = t.name.subarray(0, 0xffff);
      index.u16(name.length).bytes(name).u8(t.dtype).u8(t.dims.length);
      for (const d of t.dims) index.u64(d);
      const elements = t.dims.reduce((a, n) => a * n, 1n);
      const per = APR_ELEMENT_BYTES[t.dtype] ?? 1;
      const size = elements < 4096n ? Number(elements) * per + (t.dtype === 129 ? 4 : 0) : 64;
      const offset = lieAbout(t.offsetLie, honest, previous, t.salt);
      previous = offset;
      index.u64(offset).u64(t.sizeLie ?? BigInt(size));
      sizes.push(size);
      honest += BigInt(size + ((64 - (size % 64)) % 64));
    }
    const indexBytes = index.done();
    const metaEnd = metaOffset + meta.length;
    let indexOffset = metaEnd + ((64 - (metaEnd % 64)) % 64);
    const indexEnd = indexOffset + indexBytes.length;
    let dataOffset = indexEnd + ((64 - (indexEnd % 64)) % 64);
    let metaOffsetField = BigInt(metaOffset);
    if (sectionLie === 'metadata-in-header') metaOffsetField = 16n;
    if (sectionLie === 'index-in-metadata') indexOffset = metaOffset;
    if (sectionLie === 'data-in-index') dataOffset = indexOffset;
    if (sectionLie === 'misaligned') dataOffset += 8;

    const b = new Bytes()
      .bytes(Uint8Array.from(magic))
      .u8(version[0] ?? 2)
      .u8(version[1] ?? 0)
      .u16(flags);
    b.u32(Math.max(0, ordered.length + tensorCountLie))
      .u64(metaOffsetField)
      .u32(Math.max(0, meta.length + metadataSizeLie));
    b.u64(BigInt(indexOffset))
      .u64(sectionLie === 'past-end' ? 2n ** 40n : BigInt(dataOffset))
      .u32(0)
      .zeros(20);
    b.bytes(meta).padTo(64);
    const file = new Uint8Array(Math.max(dataOffset, indexEnd, b.length) + Number(honest) + 4);
    file.set(b.done());
    // A section lie may make two sections share bytes: later sections win, as they would on disk.
    file.set(indexBytes, indexOffset);
    let at = dataOffset;
    for (const size of sizes) {
      for (let i = 0; i < size; i++) file[at + i] = (i * 29 + 7) & 0xff;
      at += size + ((64 - (size % 64)) % 64);
    }
    const dv = new DataView(file.buffer);
    if (seal) {
      dv.setUint32(40, crc32(file.subarray(44, 64), crc32(file.subarray(0, 40))), true);
      dv.setUint32(file.length - 4, crc32(file.subarray(0, file.length - 4)), true);
    }
    return cutOrExtend(file, tail, 64);
  });

// --- safetensors -----------------------------------------------------------------------------------

/** A shape as JSON text: honest, or negative, fractional, huge, nested, a string, not a list. */
const shapeJson = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .array(fc.integer({ min: 0, max: 12 }), { maxLength: 4 })
      .map((s) => ({ text: JSON.stringify(s), elements: s.reduce((a, n) => a * n, 1) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '[-1,4]',
        '[1.5]',
        '[9007199254740993]',
        '[18446744073709551616]',
        '[4294967296,4294967296]',
        '[[2]]',
        '"4"',
        'null',
        '[1e3]',
        '[]',
        '{}',
        '[2147483648,2147483648,4]',
      )
      .map((text) => ({ text, elements: 1 })),
  },
);

const dtypeJson = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...SAFETENSORS_DTYPES).map((d) => JSON.stringify(d)) },
  { weight: 1, arbitrary: fc.constantFrom('"Q4_0"', '"f32"', '""', '32', 'null', '["F32"]', '"F32\\u0000"') },
);

const BITS: Readonly<Record<string, number>> = {
  '"F4"': 4,
  '"F6_E2M3"': 6,
  '"F6_E3M2"': 6,
  '"I16"': 16,
  '"U16"': 16,
  '"F16"': 16,
  '"BF16"': 16,
  '"I32"': 32,
  '"U32"': 32,
  '"F32"': 32,
  '"C64"': 64,
  '"F64"': 64,
  '"I64"': 64,
  '"U64"': 64,
};

const stEntry = fc.record({
  name: rawName,
  dtype: dtypeJson,
  shape: shapeJson,
  offsetLie,
  salt: fc.bigInt({ min: 0n, max: 2n ** 20n }),
  extraField: fc.option(fc.constantFrom('"extra":1', '"data_offsets":[0,0]', '"dtype":"F16"'), { freq: 8 }),
  shape3: fc.constantFrom('normal', 'three-offsets', 'string-offsets', 'not-an-object' as const),
});

/** A JSON string literal holding raw bytes; invalid UTF-8 stays invalid (the header is bytes, not text). */
function jsonStringBytes(raw: Uint8Array): Uint8Array {
  const b = new Bytes().u8(0x22);
  for (const x of raw) {
    if (x === 0x22 || x === 0x5c) b.u8(0x5c).u8(x);
    else if (x < 0x20) b.bytes(utf8.encode(`\\u${x.toString(16).padStart(4, '0')}`));
    else b.u8(x);
  }
  return b.u8(0x22).done();
}

/** A safetensors file from scratch: the JSON header is written byte by byte so duplicate keys and invalid UTF-8 survive. */
export const safetensorsStructured: fc.Arbitrary<Uint8Array> = fc
  .record({
    entries: fc.array(stEntry, { maxLength: 6 }),
    metadata: fc.oneof(
      { weight: 4, arbitrary: fc.constant('{"format":"pt"}') },
      { weight: 1, arbitrary: fc.constantFrom('null', '[]', '{"a":1}', '"pt"', '{"a":{"b":"c"}}') },
      { weight: 1, arbitrary: fc.integer({ min: 30, max: 12_000 }).map((n) => `{"deep":${'['.repeat(n)}${']'.repeat(n)}}`) },
    ),
    deepEntry: fc.option(fc.integer({ min: 30, max: 12_000 }), { freq: 8 }),
    padding: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 64 }) }),
    lengthLie: fc.oneof(
      { weight: 8, arbitrary: fc.constant(0n) },
      { weight: 1, arbitrary: fc.bigInt({ min: -16n, max: 16n }) },
      { weight: 1, arbitrary: u64Value },
    ),
    tail: tailLie,
  })
  .map(({ entries, metadata, deepEntry, padding, lengthLie, tail }) => {
    const h = new Bytes().u8(0x7b);
    const parts: Uint8Array[] = [utf8.encode(`"__metadata__":${metadata}`)];
    let honest = 0n;
    let previous = 0n;
    for (const e of entries) {
      const bits = BITS[e.dtype] ?? 8;
      const size = BigInt(Math.ceil((e.shape.elements * bits) / 8));
      const begin = lieAbout(e.offsetLie, honest, previous, e.salt);
      previous = begin;
      const offsets =
        e.shape3 === 'three-offsets'
          ? `[${begin},${begin + size},0]`
          : e.shape3 === 'string-offsets'
            ? `["${begin}","${begin + size}"]`
            : `[${begin},${begin + size}]`;
      const body =
        e.shape3 === 'not-an-object'
          ? '[1,2]'
          : `{"dtype":${e.dtype},"shape":${e.shape.text},"data_offsets":${offsets}${e.extraField === null ? '' : `,${e.extraField}`}}`;
      parts.push(
        new Bytes()
          .bytes(jsonStringBytes(e.name))
          .bytes(utf8.encode(`:${body}`))
          .done(),
      );
      honest += size;
    }
    if (deepEntry !== null) parts.push(utf8.encode(`"deep.weight":${'['.repeat(deepEntry)}${']'.repeat(deepEntry)}`));
    parts.forEach((p, i) => {
      if (i > 0) h.u8(0x2c);
      h.bytes(p);
    });
    h.u8(0x7d);
    for (let i = 0; i < padding; i++) h.u8(0x20);
    const header = h.done();
    const b = new Bytes().u64(BigInt(header.length) + lengthLie).bytes(header);
    const dataStart = b.length;
    const dataBytes = Number(honest < 1n << 16n ? honest : 1n << 16n);
    for (let i = 0; i < dataBytes; i++) b.u8((i * 13 + 3) & 0xff);
    return cutOrExtend(b.done(), tail, dataStart);
  });

/** Bytes with a known magic in front and noise behind, or no magic at all: the dispatcher's edges. */
export const sniffEdges: fc.Arbitrary<Uint8Array> = fc
  .record({
    head: fc.constantFrom(
      [],
      [0x47],
      [0x47, 0x47, 0x55],
      [0x47, 0x47, 0x55, 0x46],
      [0x41, 0x50, 0x52, 0x00],
      [0x41, 0x50, 0x52, 0x4e],
      [0x41, 0x50, 0x52, 0x31],
      [0x41, 0x50, 0x52, 0x32],
      [2, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d],
      [8, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x0a, 0x09, 0x0d, 0x7b],
    ),
    noise: fc.uint8Array({ maxLength: 96 }),
  })
  .map(({ head, noise }) => {
    const out = new Uint8Array(head.length + noise.length);
    out.set(head);
    out.set(noise, head.length);
    return out;
  });
