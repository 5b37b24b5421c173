/**
 * GGUF v2/v3 reader. Every file is untrusted: each count, length and offset is checked against the
 * bytes that remain before anything is allocated or read, and every problem becomes a FileIssue —
 * `readGguf` never throws for malformed input.
 *
 * Issue codes: F-FILE-001 unreadable header/metadata/tensor info, F-FILE-002 a read or a tensor runs
 * past the end of the file, F-FILE-003 tensor offsets misaligned or not where ggml requires them.
 * A declared length that runs past the end is F-FILE-002 (truncation) when it would fit in the whole
 * file and F-FILE-001 (a corrupt field) when it could not fit in any file this size.
 */
import { HarnessError } from '../../errors.js';
import type { ByteSource } from '../byte-source.js';
import { dequantize, GGML_TYPES, ggmlIdToDType, tensorByteLength } from '../codecs/index.js';
import { IssueBudget } from '../issue-budget.js';
import type { DType, FileCode, FileIssue, MetaValue, ModelFile, TensorEntry } from '../types.js';
import type { GgufValueType } from './writer.js';

/** "GGUF" read as a little-endian u32. */
const GGUF_MAGIC = 0x46554747;
/** ggml rejects 0 and 1 (v1 had u32 counts) and anything newer than GGUF_VERSION 3. */
const MIN_VERSION = 2;
const MAX_VERSION = 3;
/** GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** GGML_MAX_NAME is 64 including the NUL, so a name may have at most 63 bytes. */
const MAX_NAME_BYTES = 63;
/** GGUF_DEFAULT_ALIGNMENT, used when `general.alignment` is absent (or unusable). */
const DEFAULT_ALIGNMENT = 32;
/** Header/metadata are read in windows of this size, never the whole file. */
const CHUNK_BYTES = 1 << 20;
/** ggml itself rejects nested arrays; we read them but cap the depth so a crafted file cannot blow the stack. */
const MAX_ARRAY_DEPTH = 8;
/**
 * Largest metadata array accepted: 16 Mi items. Real vocabularies are ≤ ~260k entries; a cap keeps a
 * file of a few hundred MB of u8 array from turning into billions of JS numbers (8–16× its size).
 */
const MAX_ARRAY_ITEMS = 1 << 24;
/** Smallest possible tensor info: name length u64 (empty name) + n_dims u32 (0) + type u32 + offset u64. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
/** Smallest possible KV: key length u64 (empty key) + value type u32 + a 1-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;
const INT64_MAX = (1n << 63n) - 1n;

/** Value type names by on-disk id (index = `gguf_type`). */
const VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
type ValueTypeName = (typeof VALUE_TYPES)[number];

/** Minimum bytes one value of each type occupies (string: its u64 length; array: item type + count). */
const MIN_VALUE_BYTES: Record<ValueTypeName, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  string: 8,
  array: 12,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** The GGUF type of one metadata value, kept so a file can be re-written faithfully. */
export interface GgufKvType {
  type: GgufValueType | 'array';
  /** Element type of an array ('array' for nested arrays, absent for an empty nested level). */
  itemType?: GgufValueType | 'array';
}

/**
 * What `readGguf` returns: the common ModelFile plus GGUF specifics.
 * Metadata value mapping: integers ≤ 32 bits and floats → number; u64/i64 → number when the value is a
 * safe integer, otherwise bigint; bool → boolean; string → UTF-8 decoded (invalid bytes replaced);
 * array → MetaValue[] (nested arrays nest).
 */
export interface GgufFile extends ModelFile {
  format: 'gguf';
  /** Header version, undefined if the header could not be read. */
  version: number | undefined;
  /** Alignment in effect (`general.alignment` or the default 32). */
  alignment: number;
  /** Absolute offset of the data section, undefined if the tensor infos could not be read. */
  dataOffset: number | undefined;
  /** GGUF type of every metadata key read. */
  kvTypes: Map<string, GgufKvType>;
}

/** Thrown inside the reader to stop parsing; always caught by readGguf. */
class StopParsing extends Error {
  constructor(readonly issue: FileIssue) {
    super(issue.message);
  }
}

function issue(code: FileCode, message: string, fatal: boolean, extra: Partial<FileIssue> = {}): FileIssue {
  return { code, message, fatal, ...extra };
}

/** A forward cursor over a ByteSource that reads bounded windows and checks every read first. */
class Cursor {
  pos = 0;
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;
  private view: DataView = new DataView(new ArrayBuffer(0));
  // ignoreBOM: a string that is exactly U+FEFF (Llama-2's token 31759) must not decode as "".
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(private readonly src: ByteSource) {}

  get size(): number {
    return this.src.size;
  }

  get remaining(): number {
    return this.src.size - this.pos;
  }

  /**
   * Stop unless `need` bytes (a bigint so u64 products never wrap) remain. `what` names the field
   * for the message; `declared` is the raw count/length when it came from the file.
   */
  requireBytes(need: bigint, what: string, declared?: bigint): void {
    if (need <= BigInt(this.remaining)) return;
    const corrupt = declared !== undefined && need > BigInt(this.size);
    const detail = declared !== undefined ? ` (declared ${declared})` : '';
    const code: FileCode = corrupt ? 'F-FILE-001' : 'F-FILE-002';
    const message = corrupt
      ? `${what}${detail} needs ${need} bytes at offset ${this.pos}, more than the whole file (${this.size} bytes)`
      : `file truncated: ${what}${detail} needs ${need} bytes at offset ${this.pos}, only ${this.remaining} remain`;
    throw new StopParsing(issue(code, message, true, { evidence: { offset: this.pos, need: need.toString(), remaining: this.remaining } }));
  }

  /** Index into the window of `n` bytes at pos (n ≤ remaining already checked), then advance. */
  private take(n: number, what: string): number {
    this.requireBytes(BigInt(n), what);
    let rel = this.pos - this.windowStart;
    if (rel < 0 || rel + n > this.window.length) {
      const len = Math.min(Math.max(n, CHUNK_BYTES), this.remaining);
      this.window = this.src.read(this.pos, len);
      this.windowStart = this.pos;
      this.view = new DataView(this.window.buffer, this.window.byteOffset, this.window.byteLength);
      rel = 0;
    }
    this.pos += n;
    return rel;
  }

  // take() may replace the window, so it must run before `this.view` is read.
  u8(what: string): number {
    const i = this.take(1, what);
    return this.view.getUint8(i);
  }
  i8(what: string): number {
    const i = this.take(1, what);
    return this.view.getInt8(i);
  }
  u16(what: string): number {
    const i = this.take(2, what);
    return this.view.getUint16(i, true);
  }
  i16(what: string): number {
    const i = this.take(2, what);
    return this.view.getInt16(i, true);
  }
  u32(what: string): number {
    const i = this.take(4, what);
    return this.view.getUint32(i, true);
  }
  i32(what: string): number {
    const i = this.take(4, what);
    return this.view.getInt32(i, true);
  }
  f32(what: string): number {
    const i = this.take(4, what);
    return this.view.getFloat32(i, true);
  }
  f64(what: string): number {
    const i = this.take(8, what);
    return this.view.getFloat64(i, true);
  }
  u64(what: string): bigint {
    const i = this.take(8, what);
    return this.view.getBigUint64(i, true);
  }
  i64(what: string): bigint {
    const i = this.take(8, what);
    return this.view.getBigInt64(i, true);
  }

  /** A GGUF string: u64 length, then that many bytes (length checked before reading). */
  string(what: string): { text: string; byteLength: number } {
    const len = this.u64(`${what} length`);
    this.requireBytes(len, what, len);
    const n = Number(len);
    const at = this.take(n, what);
    return { text: this.decoder.decode(this.window.subarray(at, at + n)), byteLength: n };
  }
}

/** u64/i64 metadata as number when exact, else bigint. */
function int64Value(v: bigint): number | bigint {
  return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Raw tensor info as stored, spec names kept (`ne`, `n_dims`). */
interface RawTensorInfo {
  name: string;
  nameBytes: number;
  ne: bigint[];
  type: number;
  /** Relative to the data section. */
  offset: bigint;
  /** File position of the info, for messages. */
  infoAt: number;
}

class GgufParser {
  readonly issues: FileIssue[] = [];
  readonly metadata = new Map<string, MetaValue>();
  readonly kvTypes = new Map<string, GgufKvType>();
  readonly infos: RawTensorInfo[] = [];
  version: number | undefined;
  private readonly cur: Cursor;

  constructor(src: ByteSource) {
    this.cur = new Cursor(src);
  }

  fatal(code: FileCode, message: string, evidence?: Record<string, unknown>): never {
    throw new StopParsing(issue(code, message, true, evidence === undefined ? {} : { evidence }));
  }

  header(): { tensorCount: bigint; kvCount: bigint } {
    const c = this.cur;
    if (c.size < 4) this.fatal('F-FILE-001', `not a GGUF file: ${c.size} bytes, too short for the magic`);
    const magic = c.u32('magic');
    if (magic !== GGUF_MAGIC) {
      const hex = [0, 8, 16, 24].map((s) => ((magic >>> s) & 0xff).toString(16).padStart(2, '0')).join(' ');
      this.fatal('F-FILE-001', `bad magic: expected "GGUF" (47 47 55 46), got ${hex}`, { magic: hex });
    }
    const version = c.u32('version');
    this.version = version;
    if (version < MIN_VERSION || version > MAX_VERSION) {
      const swapped = (version & 0xffff) === 0 ? ' (the file probably has the other byte order)' : '';
      this.fatal('F-FILE-001', `unsupported GGUF version ${version}; supported ${MIN_VERSION}..${MAX_VERSION}${swapped}`, { version });
    }
    const tensorCount = c.u64('tensor_count');
    const kvCount = c.u64('metadata_kv_count');
    const need = tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) + kvCount * BigInt(MIN_KV_BYTES);
    if (need > BigInt(c.remaining)) {
      this.fatal(
        'F-FILE-001',
        `implausible header: tensor_count ${tensorCount} and metadata_kv_count ${kvCount} need at least ${need} bytes, only ${c.remaining} remain`,
        { tensorCount: tensorCount.toString(), kvCount: kvCount.toString(), remaining: c.remaining },
      );
    }
    return { tensorCount, kvCount };
  }

  kvs(count: number): void {
    for (let i = 0; i < count; i++) {
      const at = this.cur.pos;
      const key = this.cur.string(`key of metadata entry ${i}`).text;
      const typeId = this.cur.u32(`value type of '${key}'`);
      const type = VALUE_TYPES[typeId];
      if (type === undefined)
        this.fatal('F-FILE-001', `metadata '${key}': bad value type ${typeId} at offset ${this.cur.pos - 4}`, { key, typeId });
      const kvType: GgufKvType = { type };
      const value = this.value(type, key, 0, kvType);
      if (this.metadata.has(key)) {
        this.issues.push(issue('F-FILE-001', `duplicate metadata key '${key}' at offset ${at}`, false, { evidence: { key, offset: at } }));
        continue;
      }
      this.metadata.set(key, value);
      this.kvTypes.set(key, kvType);
    }
  }

  /** One value of `type`; `kvType` receives the item type of arrays. */
  private value(type: ValueTypeName, key: string, depth: number, kvType?: GgufKvType): MetaValue {
    const c = this.cur;
    switch (type) {
      case 'u8':
        return c.u8(key);
      case 'i8':
        return c.i8(key);
      case 'u16':
        return c.u16(key);
      case 'i16':
        return c.i16(key);
      case 'u32':
        return c.u32(key);
      case 'i32':
        return c.i32(key);
      case 'f32':
        return c.f32(key);
      case 'f64':
        return c.f64(key);
      case 'u64':
        return int64Value(c.u64(key));
      case 'i64':
        return int64Value(c.i64(key));
      case 'string':
        return c.string(`string value of '${key}'`).text;
      case 'bool': {
        const b = c.u8(key);
        if (b > 1) {
          this.issues.push(
            issue('F-FILE-001', `metadata '${key}': bool byte is ${b}, must be 0 or 1`, false, {
              evidence: { key, value: b, offset: c.pos - 1 },
            }),
          );
        }
        return b !== 0;
      }
      case 'array': {
        if (depth >= MAX_ARRAY_DEPTH) this.fatal('F-FILE-001', `metadata '${key}': arrays nested deeper than ${MAX_ARRAY_DEPTH}`, { key });
        const itemId = c.u32(`array item type of '${key}'`);
        const itemType = VALUE_TYPES[itemId];
        if (itemType === undefined)
          this.fatal('F-FILE-001', `metadata '${key}': bad array item type ${itemId} at offset ${c.pos - 4}`, { key, itemId });
        if (kvType !== undefined) kvType.itemType = itemType;
        const count = c.u64(`array length of '${key}'`);
        c.requireBytes(count * BigInt(MIN_VALUE_BYTES[itemType]), `array '${key}' of ${itemType}`, count);
        if (count > BigInt(MAX_ARRAY_ITEMS)) {
          this.fatal('F-FILE-001', `metadata '${key}': array of ${count} items exceeds the limit of ${MAX_ARRAY_ITEMS}`, {
            key,
            count: count.toString(),
          });
        }
        const n = Number(count);
        const out: MetaValue[] = new Array<MetaValue>(n);
        for (let i = 0; i < n; i++) out[i] = this.value(itemType, key, depth + 1);
        return out;
      }
    }
  }

  tensorInfos(count: number): void {
    const c = this.cur;
    for (let i = 0; i < count; i++) {
      const infoAt = c.pos;
      const { text: name, byteLength: nameBytes } = c.string(`name of tensor ${i}`);
      const nDims = c.u32(`n_dims of '${name}'`);
      if (nDims > MAX_DIMS) {
        this.fatal('F-FILE-001', `tensor '${name}': n_dims ${nDims} exceeds GGML_MAX_DIMS ${MAX_DIMS}`, { tensor: name, nDims });
      }
      const ne: bigint[] = [];
      for (let d = 0; d < nDims; d++) ne.push(c.u64(`ne[${d}] of '${name}'`));
      const type = c.u32(`type of '${name}'`);
      const offset = c.u64(`offset of '${name}'`);
      this.infos.push({ name, nameBytes, ne, type, offset, infoAt });
    }
  }

  get pos(): number {
    return this.cur.pos;
  }

  get size(): number {
    return this.cur.size;
  }
}

function alignUp(n: bigint, a: bigint): bigint {
  return n + ((a - (n % a)) % a);
}

/** The alignment from `general.alignment` (UINT32, power of two), or the default with an issue. */
function resolveAlignment(p: GgufParser): number {
  const v = p.metadata.get('general.alignment');
  if (v === undefined) return DEFAULT_ALIGNMENT;
  const t = p.kvTypes.get('general.alignment')?.type;
  if (t !== 'u32') {
    p.issues.push(
      issue('F-FILE-001', `general.alignment must be of type UINT32, got ${t}; using ${DEFAULT_ALIGNMENT}`, false, {
        evidence: { type: t },
      }),
    );
    return DEFAULT_ALIGNMENT;
  }
  const a = v as number; // a UINT32 value is read as a number (t === 'u32' above)
  if (a === 0 || (a & (a - 1)) !== 0) {
    p.issues.push(
      issue('F-FILE-001', `general.alignment ${a} is not a power of two; using ${DEFAULT_ALIGNMENT}`, false, {
        evidence: { alignment: a },
      }),
    );
    return DEFAULT_ALIGNMENT;
  }
  return a;
}

/** Check the tensor infos the way ggml does and build the tensor table. */
function buildTensors(p: GgufParser, alignment: number, dataOffset: number): TensorEntry[] {
  const size = BigInt(p.size);
  const align = BigInt(alignment);
  const data = BigInt(dataOffset);
  const seen = new Set<string>();
  const entries: TensorEntry[] = [];
  const budget = new IssueBudget(p.issues);
  // ggml: tensor i must sit at Σ_{j<i} pad(nbytes_j). After a tensor whose size is unknown we resync on the next actual offset.
  let expected: bigint | undefined = 0n;
  for (const info of p.infos) {
    const { name, ne, type, offset } = info;
    const at = { tensor: name };
    const flag = (code: FileCode, message: string, evidence: Record<string, unknown>): void => {
      budget.push(issue(code, message, false, { ...at, evidence }));
    };
    let usable = true;
    if (info.nameBytes > MAX_NAME_BYTES) {
      flag('F-FILE-001', `name is ${info.nameBytes} bytes, ggml allows at most ${MAX_NAME_BYTES}`, { nameBytes: info.nameBytes });
    }
    if (seen.has(name)) {
      flag('F-FILE-001', 'duplicate tensor name', { offset: info.infoAt });
      usable = false;
    }
    seen.add(name);

    let elements: bigint | undefined = 1n;
    for (let d = 0; d < ne.length; d++) {
      const n = ne[d] as bigint; // d < ne.length
      if (n > INT64_MAX) {
        flag('F-FILE-001', `ne[${d}] = ${BigInt.asIntN(64, n)} is negative`, { dim: d, ne: n.toString() });
        elements = undefined;
        break;
      }
      elements *= n;
      if (elements > INT64_MAX) {
        flag('F-FILE-001', `element count overflows int64 (ne = [${ne.join(', ')}])`, { ne: ne.map(String) });
        elements = undefined;
        break;
      }
    }

    const ggml = GGML_TYPES.get(type);
    const dtype: DType | undefined = ggmlIdToDType(type);
    let nbytes: bigint | undefined;
    if (ggml === undefined) {
      flag('F-FILE-001', `unknown ggml type ${type}`, { type });
    } else {
      if (dtype === undefined) {
        flag('F-FILE-001', `ggml type ${ggml.name} (${type}) is not supported by this harness`, { type, typeName: ggml.name });
      }
      if (ggml.blockSize !== undefined && ggml.typeSize !== undefined && elements !== undefined) {
        const ne0 = ne[0] ?? 1n;
        if (ne0 % BigInt(ggml.blockSize) !== 0n) {
          flag('F-FILE-001', `ne[0] = ${ne0} is not a multiple of the ${ggml.name} block size ${ggml.blockSize}`, {
            ne0: ne0.toString(),
            blockSize: ggml.blockSize,
          });
        } else {
          nbytes = (elements / BigInt(ggml.blockSize)) * BigInt(ggml.typeSize);
        }
      }
    }

    if (offset % align !== 0n) {
      flag('F-FILE-003', `offset ${offset} is not a multiple of the alignment ${alignment}`, {
        offset: offset.toString(),
        alignment,
        expected: expected?.toString(),
      });
    } else if (expected !== undefined && offset !== expected) {
      flag('F-FILE-003', `tensor has offset ${offset}, expected ${expected}`, { offset: offset.toString(), expected: expected.toString() });
    }
    expected = nbytes === undefined ? undefined : alignUp((expected ?? offset) + nbytes, align);

    const start = data + offset;
    if (nbytes !== undefined && start + nbytes > size) {
      flag('F-FILE-002', `data [${start}, ${start + nbytes}) runs past the end of the file (${size} bytes)`, {
        start: start.toString(),
        end: (start + nbytes).toString(),
        fileBytes: p.size,
      });
    } else if (nbytes === undefined && start > size) {
      flag('F-FILE-002', `data starts at ${start}, past the end of the file (${size} bytes)`, {
        start: start.toString(),
        fileBytes: p.size,
      });
    }

    if (!usable || dtype === undefined || nbytes === undefined || elements === undefined) continue;
    const shape = ne.map(Number).reverse();
    const absolute = Number(start);
    const byteLength = Number(nbytes);
    if (!Number.isSafeInteger(absolute) || !Number.isSafeInteger(byteLength) || !shape.every(Number.isSafeInteger)) continue;
    // tensorByteLength cross-checks the codec table against the ggml table.
    if (tensorByteLength(dtype, Number(elements)) !== byteLength) continue;
    entries.push({ name, shape, dtype, rawType: type, offset: absolute, byteLength, spanBytes: 0 });
  }
  budget.close();

  // spanBytes: to the next tensor's start in file order (any tensor, usable or not), else to the end of the file.
  const starts = [
    ...new Set(
      p.infos
        .map((i) => data + i.offset)
        .filter((s) => s <= size)
        .map(Number),
    ),
  ].sort((a, b) => a - b);
  for (const e of entries) {
    // Binary search for the first start after this tensor's: a linear find made a file of N tensors O(N²) to read.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((starts[mid] ?? Infinity) <= e.offset) lo = mid + 1;
      else hi = mid;
    }
    const next = starts[lo] ?? p.size;
    e.spanBytes = Math.max(0, Math.min(next, p.size) - e.offset);
  }
  return entries;
}

/**
 * Read a GGUF file's metadata and tensor table. Never throws for malformed input: problems are
 * returned as `issues`; a fatal issue means the tensor table (and possibly later metadata) is missing.
 */
export function readGguf(src: ByteSource): GgufFile {
  const p = new GgufParser(src);
  let alignment = DEFAULT_ALIGNMENT;
  let dataOffset: number | undefined;
  let tensors: TensorEntry[] = [];
  try {
    const { tensorCount, kvCount } = p.header();
    p.kvs(Number(kvCount));
    alignment = resolveAlignment(p);
    p.tensorInfos(Number(tensorCount));
    dataOffset = Number(alignUp(BigInt(p.pos), BigInt(alignment)));
    tensors = buildTensors(p, alignment, dataOffset);
  } catch (err) {
    if (err instanceof StopParsing) {
      p.issues.push(err.issue);
    } else {
      // A reader bug or an I/O failure, still reported as data so a matrix run goes on.
      const message = err instanceof Error ? err.message : String(err);
      p.issues.push(issue('F-FILE-001', `unreadable: ${message}`, true, { evidence: { internal: true } }));
    }
    tensors = [];
  }
  return {
    format: 'gguf',
    metadata: p.metadata,
    tensors,
    issues: p.issues,
    version: p.version,
    alignment,
    dataOffset,
    kvTypes: p.kvTypes,
  };
}

/** Reading a tensor the reader flagged as out of bounds (or a hand-made bad entry). */
export class TensorReadError extends HarnessError {
  override readonly name = 'TensorReadError';
  constructor(
    readonly tensor: string,
    message: string,
  ) {
    super('E-TENSOR-READ', message);
  }
}

/**
 * The stored bytes of one tensor (`byteLength` bytes at `offset`). With a BufferByteSource the result
 * is a view into the source buffer, not a copy. Throws TensorReadError only for an entry whose bytes are
 * not inside the file, which readGguf always flags (F-FILE-002).
 */
export function readTensorBytes(src: ByteSource, entry: TensorEntry): Uint8Array {
  const { offset, byteLength } = entry;
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(byteLength) ||
    offset < 0 ||
    byteLength < 0 ||
    offset + byteLength > src.size
  ) {
    throw new TensorReadError(
      entry.name,
      `tensor '${entry.name}': bytes [${offset}, ${offset + byteLength}) are not inside the file (${src.size} bytes)`,
    );
  }
  return src.read(offset, byteLength);
}

/** One tensor decoded to f32 (bounds-checked like readTensorBytes). */
export function readTensorF32(src: ByteSource, entry: TensorEntry): Float32Array<ArrayBuffer> {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  if (tensorByteLength(entry.dtype, count) !== entry.byteLength) {
    throw new TensorReadError(entry.name, `tensor '${entry.name}': ${entry.byteLength} bytes do not hold ${count} ${entry.dtype} elements`);
  }
  return dequantize(entry.dtype, readTensorBytes(src, entry), count);
}
