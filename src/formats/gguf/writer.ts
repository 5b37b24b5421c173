/**
 * GGUF v3 writer (the layout gguf-py writes): header, KVs, tensor infos, zero padding to the alignment,
 * then each tensor's bytes padded to the alignment. Offsets come from the data actually given, so a
 * mutant converter can write bytes that disagree with dtype × shape and the reader must catch it.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { TYPE_INFO } from '../codecs/index.js';
import type { DType } from '../types.js';

/** Scalar GGUF value types, spelled as in gguf-py's GGUFValueType (lower-cased, short). */
export type GgufValueType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';

/** On-disk `gguf_type` ids (formats.md §1.1). */
export const GGUF_VALUE_TYPE_IDS: Record<GgufValueType | 'array', number> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};

/** A scalar value. 64-bit integers may be given as number (if safe) or bigint; bool as boolean or 0/1. */
export type GgufScalar = number | bigint | boolean | string;

/** One metadata key/value as the writer takes it. Arrays are flat (`itemType` scalar). */
export interface GgufKv {
  key: string;
  type: GgufValueType | 'array';
  /** Element type when `type` is 'array'. */
  itemType?: GgufValueType;
  value: GgufScalar | ArrayLike<GgufScalar>;
}

/** One tensor to write. `data` is written as is; its length decides the next tensor's offset. */
export interface GgufTensorIn {
  name: string;
  /** torch order (outermost first); written as `ne` reversed. */
  shape: number[];
  dtype: DType;
  data: Uint8Array;
  /** Override the ggml type id written (for mutant converters). */
  rawType?: number;
}

export interface GgufWriteInput {
  kvs: GgufKv[];
  tensors: GgufTensorIn[];
  /** Padding unit for the header end and each tensor (default 32, GGUF_DEFAULT_ALIGNMENT). `general.alignment` is written only if the caller includes it in `kvs`. */
  alignment?: number;
}

const GGUF_MAGIC = 0x46554747;
const GGUF_VERSION = 3;
const DEFAULT_ALIGNMENT = 32;

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

/** A growable little-endian byte sink. */
class Sink {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.length + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // room() may replace the buffer, so it must run before `this.view` is read.
  u8(v: number): void {
    const at = this.room(1);
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.room(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.room(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.room(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.room(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.room(4);
    this.view.setInt32(at, v, true);
  }
  f32(v: number): void {
    const at = this.room(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.room(8);
    this.view.setFloat64(at, v, true);
  }
  u64(v: bigint): void {
    const at = this.room(8);
    this.view.setBigUint64(at, v, true);
  }
  i64(v: bigint): void {
    const at = this.room(8);
    this.view.setBigInt64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  zeros(n: number): void {
    const at = this.room(n);
    this.buf.fill(0, at, this.length);
  }
  string(s: string): void {
    const b = utf8.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const utf8 = new TextEncoder();

function fail(key: string, message: string): never {
  throw new Error(`GGUF writer: key '${key}': ${message}`);
}

function toBigInt(key: string, type: GgufValueType, v: GgufScalar): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return fail(key, `${type} value must be a safe integer or a bigint, got ${String(v)}`);
}

function writeScalar(out: Sink, key: string, type: GgufValueType, v: GgufScalar): void {
  const range = INT_RANGES[type];
  if (range !== undefined) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) {
      fail(key, `${type} value must be an integer in [${range[0]}, ${range[1]}], got ${String(v)}`);
    }
  }
  switch (type) {
    case 'u8':
    case 'i8':
    case 'u16':
    case 'i16':
    case 'u32':
    case 'i32':
      return out[type](v as number); // an integer within INT_RANGES[type]: checked above
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') fail(key, `${type} value must be a number, got ${typeof v}`);
      return type === 'f32' ? out.f32(v) : out.f64(v);
    case 'bool':
      // A number is written raw so a mutant can write an invalid bool byte on purpose.
      if (typeof v === 'boolean') return out.u8(v ? 1 : 0);
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255) return out.u8(v);
      return fail(key, `bool value must be a boolean (or a raw byte), got ${String(v)}`);
    case 'string':
      if (typeof v !== 'string') fail(key, `string value must be a string, got ${typeof v}`);
      return out.string(v);
    case 'u64': {
      const b = toBigInt(key, type, v);
      if (b < 0n || b >= 1n << 64n) fail(key, `u64 value out of range: ${b}`);
      return out.u64(b);
    }
    case 'i64': {
      const b = toBigInt(key, type, v);
      if (b < -(1n << 63n) || b >= 1n << 63n) fail(key, `i64 value out of range: ${b}`);
      return out.i64(b);
    }
  }
}

function isArrayLike(v: unknown): v is ArrayLike<GgufScalar> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}

function writeKv(out: Sink, kv: GgufKv): void {
  out.string(kv.key);
  out.u32(GGUF_VALUE_TYPE_IDS[kv.type]);
  if (kv.type !== 'array') {
    if (isArrayLike(kv.value)) fail(kv.key, `type ${kv.type} needs a scalar value, got an array`);
    writeScalar(out, kv.key, kv.type, kv.value as GgufScalar); // not array-like: checked above
    return;
  }
  const itemType = kv.itemType;
  if (itemType === undefined) fail(kv.key, `array needs an itemType`);
  if (!isArrayLike(kv.value)) fail(kv.key, `array value must be an array`);
  const items = kv.value;
  out.u32(GGUF_VALUE_TYPE_IDS[itemType]);
  out.u64(BigInt(items.length));
  for (let i = 0; i < items.length; i++) {
    writeScalar(out, kv.key, itemType, items[i] as GgufScalar); // i < items.length
  }
}

function pad(n: number, alignment: number): number {
  return (alignment - (n % alignment)) % alignment;
}

interface Layout {
  header: Uint8Array;
  alignment: number;
  /** Zero bytes after each tensor's data. */
  paddings: number[];
  totalBytes: number;
}

function layout(input: GgufWriteInput): Layout {
  const alignment = input.alignment ?? DEFAULT_ALIGNMENT;
  if (!Number.isSafeInteger(alignment) || alignment <= 0) {
    throw new Error(`GGUF writer: alignment must be a positive integer, got ${alignment}`);
  }
  const out = new Sink();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(BigInt(input.tensors.length));
  out.u64(BigInt(input.kvs.length));
  for (const kv of input.kvs) writeKv(out, kv);
  let offset = 0;
  const paddings: number[] = [];
  for (const t of input.tensors) {
    out.string(t.name);
    out.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) {
      const dim = t.shape[i] as number;
      if (!Number.isSafeInteger(dim) || dim < 0) {
        throw new Error(`GGUF writer: tensor '${t.name}': bad dimension ${dim}`);
      }
      out.u64(BigInt(dim));
    }
    out.u32(t.rawType ?? TYPE_INFO[t.dtype].ggmlId);
    out.u64(BigInt(offset));
    const p = pad(t.data.length, alignment);
    paddings.push(p);
    offset += t.data.length + p;
  }
  out.zeros(pad(out.length, alignment));
  const header = out.result();
  return { header, alignment, paddings, totalBytes: header.length + offset };
}

/** Encode a whole GGUF v3 file in memory. */
export function encodeGguf(input: GgufWriteInput): Uint8Array {
  const { header, paddings, totalBytes } = layout(input);
  const file = new Uint8Array(totalBytes);
  file.set(header, 0);
  let at = header.length;
  input.tensors.forEach((t, i) => {
    file.set(t.data, at);
    at += t.data.length + (paddings[i] as number);
  });
  return file;
}

/**
 * Write a GGUF v3 file tensor by tensor (never concatenating the model into one buffer), to a temporary
 * name first and renamed into place, so a reader never sees a half-written file.
 */
export function writeGgufFile(path: string, input: GgufWriteInput): void {
  const { header, alignment, paddings } = layout(input);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    writeAll(fd, header);
    const zeros = new Uint8Array(alignment);
    input.tensors.forEach((t, i) => {
      writeAll(fd, t.data);
      writeAll(fd, zeros.subarray(0, paddings[i] as number));
    });
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}
