/**
 * APR v2 reader (aprender's container, formats.md §2). Every file is untrusted: each count, length and
 * offset is checked against the file size before anything is read or allocated, and every problem is
 * returned as a FileIssue — `readApr` never throws for malformed input.
 *
 * Issue codes: F-FILE-001 bad magic / version / layout flag, unreadable metadata JSON, an index entry
 * aprender would not accept (unknown dtype, ndim > 8, name > 256 bytes, unsorted or duplicate names);
 * F-FILE-002 a section or a tensor runs past the end of the file; F-FILE-003 sections or tensors that
 * overlap or are not 64-byte aligned; F-FILE-004 a header or footer CRC-32 that does not match.
 *
 * aprender's own reader checks less (magic, header CRC, the column-major flag, the name order); the
 * extra checks are the invariants its writer always produces. It does not check tensor sizes against
 * dtype × shape either: `byteLength` (what dtype × shape requires) and `spanBytes` (the index's
 * size_bytes) are both reported and compared by the layout check (F-LAYOUT-CONTRACT-004).
 */
import { errorMessage } from '../../errors.js';
import type { ByteSource } from '../byte-source.js';
import { canDequantize, dequantize } from '../codecs/index.js';
import { readTensorBytes, TensorReadError } from '../gguf/reader.js';
import { IssueBudget } from '../issue-budget.js';
import { exceedsJsonDepth, isJsonObject, SERDE_JSON_RECURSION_LIMIT } from '../json-depth.js';
import type { FileCode, FileIssue, MetaValue, ModelFile, TensorEntry } from '../types.js';
import { crc32 } from './crc32.js';
import {
  APR_ALIGNMENT,
  APR_DTYPE_CODES,
  APR_FLAGS,
  APR_FOOTER_BYTES,
  APR_HEADER_BYTES,
  APR_MAGIC,
  APR_MAX_DIMS,
  APR_MAX_NAME_BYTES,
  APR_MIN_INDEX_ENTRY_BYTES,
  APR_VERSION_MAJOR,
  APR_VERSION_MINOR,
  aprDTypeOfCode,
  aprRequiredBytes,
  compareCodePoints,
  type AprDType,
} from './format.js';

/** The footer CRC is computed over windows of this size, never the whole file at once. */
const CRC_WINDOW_BYTES = 1 << 20;
/** The index is read in windows of at least this size. */
const INDEX_WINDOW_BYTES = 1 << 16;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The 64-byte header as stored (spec names). */
export interface AprHeader {
  magic: string;
  /** (major, minor): (2, 0) for v2. */
  version: [number, number];
  flags: number;
  tensor_count: number;
  metadata_offset: bigint;
  metadata_size: number;
  tensor_index_offset: bigint;
  data_offset: bigint;
  /** CRC-32 of bytes 0..40 ++ 44..64 as stored. */
  checksum: number;
}

/** One tensor index entry as stored (spec names). */
export interface AprIndexEntry {
  name: string;
  name_len: number;
  /** Raw dtype code (8/9 are the legacy APR Q4/Q8 codes). */
  dtype: number;
  ndim: number;
  dims: bigint[];
  /** Relative to data_offset. */
  offset: bigint;
  size_bytes: bigint;
  /** File position of the entry, for messages. */
  entryAt: number;
}

/**
 * What `readApr` returns. `metadata` flattens the JSON metadata's top-level keys: strings, numbers
 * and booleans as they are, arrays of those as MetaValue[] (nested arrays nest), and any object — or
 * an array holding an object or a null — as its compact JSON text. Top-level nulls (serde writes every
 * unset Option as null) are left out. `metadataJson` keeps the parsed object as is.
 */
export interface AprFile extends ModelFile {
  format: 'apr';
  header: AprHeader | undefined;
  /** Absolute offset of the data section, undefined if the header could not be read. */
  dataOffset: number | undefined;
  metadataJson: Record<string, unknown> | undefined;
  /** Every index entry read, valid or not, in file order. */
  index: AprIndexEntry[];
}

export interface AprReadOptions {
  /** Check the footer CRC-32 (reads the whole file in 1 MiB windows). Default true. */
  verifyFooter?: boolean;
}

/** Thrown inside the reader to stop parsing; always caught by readApr. */
class StopParsing extends Error {
  constructor(readonly issue: FileIssue) {
    super(issue.message);
  }
}

function issue(code: FileCode, message: string, fatal: boolean, extra: Partial<FileIssue> = {}): FileIssue {
  return { code, message, fatal, ...extra };
}

function stop(code: FileCode, message: string, evidence?: Record<string, unknown>): never {
  throw new StopParsing(issue(code, message, true, evidence === undefined ? {} : { evidence }));
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** Sequential reads over [start, size) in bounded windows; every read is checked against the file size. */
class IndexCursor {
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;

  constructor(
    private readonly src: ByteSource,
    public pos: number,
  ) {}

  /** `n` bytes at pos (advancing), or a fatal F-FILE-002 naming `what`. */
  take(n: number, what: string): Uint8Array {
    if (n > this.src.size - this.pos) {
      stop(
        'F-FILE-002',
        `file truncated: ${what} needs ${n} bytes at offset ${this.pos}, only ${Math.max(0, this.src.size - this.pos)} remain`,
        {
          offset: this.pos,
          need: n,
        },
      );
    }
    let rel = this.pos - this.windowStart;
    if (rel < 0 || rel + n > this.window.length) {
      this.window = this.src.read(this.pos, Math.min(Math.max(n, INDEX_WINDOW_BYTES), this.src.size - this.pos));
      this.windowStart = this.pos;
      rel = 0;
    }
    this.pos += n;
    return this.window.subarray(rel, rel + n);
  }
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function parseHeader(src: ByteSource, out: AprFile): AprHeader {
  if (src.size < 4) stop('F-FILE-001', `not an APR file: ${src.size} bytes, too short for the magic`);
  const m = src.read(0, 4);
  const magicText = String.fromCharCode(...m).replace(/\0/g, '\\0');
  if (!APR_MAGIC.every((b, i) => m[i] === b)) {
    const isApr = m[0] === 0x41 && m[1] === 0x50 && m[2] === 0x52;
    const detail =
      isApr && (m[3] === 0x4e || m[3] === 0x31)
        ? ' (APR v1, msgpack/JSON metadata; only v2 is read)'
        : isApr && m[3] === 0x32
          ? ' ("APR2" passes tensors.rs detect_format, but AprV2Header::from_bytes accepts only "APR\\0")'
          : '';
    stop('F-FILE-001', `bad magic: expected "APR\\0" (41 50 52 00), got "${magicText}"${detail}`, { magic: magicText });
  }
  if (src.size < APR_HEADER_BYTES) {
    stop('F-FILE-002', `file truncated: the header needs ${APR_HEADER_BYTES} bytes, the file has ${src.size}`, { fileBytes: src.size });
  }
  const h = src.read(0, APR_HEADER_BYTES);
  const dv = view(h);
  const header: AprHeader = {
    magic: magicText,
    version: [h[4] as number, h[5] as number],
    flags: dv.getUint16(6, true),
    tensor_count: dv.getUint32(8, true),
    metadata_offset: dv.getBigUint64(12, true),
    metadata_size: dv.getUint32(20, true),
    tensor_index_offset: dv.getBigUint64(24, true),
    data_offset: dv.getBigUint64(32, true),
    checksum: dv.getUint32(40, true),
  };
  out.header = header;
  const [major, minor] = header.version;
  if (major !== APR_VERSION_MAJOR) {
    stop('F-FILE-001', `unsupported APR version ${major}.${minor}; this reader reads ${APR_VERSION_MAJOR}.x`, {
      version: `${major}.${minor}`,
    });
  }
  if (minor !== APR_VERSION_MINOR) {
    out.issues.push(
      issue('F-FILE-001', `APR version ${major}.${minor}: aprender writes ${APR_VERSION_MAJOR}.${APR_VERSION_MINOR}`, false, {
        evidence: { version: `${major}.${minor}` },
      }),
    );
  }
  const computed = crc32(h.subarray(44, 64), crc32(h.subarray(0, 40)));
  if (computed !== header.checksum) {
    out.issues.push(
      issue(
        'F-FILE-004',
        `header CRC-32 mismatch: stored ${hex(header.checksum)}, computed ${hex(computed)} over bytes 0..40 and 44..64`,
        false,
        {
          evidence: { stored: hex(header.checksum), computed: hex(computed) },
        },
      ),
    );
  }
  if (header.flags & APR_FLAGS.LAYOUT_COLUMN_MAJOR) {
    out.issues.push(
      issue(
        'F-FILE-001',
        `LAYOUT-002: flags 0x${header.flags.toString(16)} set LAYOUT_COLUMN_MAJOR, which aprender's reader rejects (a GGUF import without the transpose)`,
        false,
        {
          evidence: { flags: header.flags },
        },
      ),
    );
  }
  return header;
}

function checkFooter(src: ByteSource, out: AprFile): void {
  if (src.size < APR_HEADER_BYTES + APR_FOOTER_BYTES) {
    out.issues.push(
      issue('F-FILE-002', `file truncated: no room for the ${APR_FOOTER_BYTES}-byte footer after the header (${src.size} bytes)`, false, {
        evidence: { fileBytes: src.size },
      }),
    );
    return;
  }
  const end = src.size - APR_FOOTER_BYTES;
  let c = 0;
  for (let at = 0; at < end; at += CRC_WINDOW_BYTES) c = crc32(src.read(at, Math.min(CRC_WINDOW_BYTES, end - at)), c);
  const stored = view(src.read(end, APR_FOOTER_BYTES)).getUint32(0, true);
  if (stored !== c) {
    out.issues.push(
      issue('F-FILE-004', `footer CRC-32 mismatch: stored ${hex(stored)}, computed ${hex(c)} over the first ${end} bytes`, false, {
        evidence: { stored: hex(stored), computed: hex(c), coveredBytes: end },
      }),
    );
  }
}

/** Arrays nested deeper than this are kept as JSON text (bounds the recursion on crafted metadata). */
const MAX_META_DEPTH = 32;

/** A string, number, boolean, or an array (of arrays) of them. */
function isPlainTree(v: unknown, depth = 0): v is MetaValue {
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return true;
  return Array.isArray(v) && depth < MAX_META_DEPTH && v.every((x) => isPlainTree(x, depth + 1));
}

/** JSON value → MetaValue (see AprFile); undefined for null. */
function toMetaValue(v: unknown): MetaValue | undefined {
  if (v === null || v === undefined) return undefined;
  return isPlainTree(v) ? v : JSON.stringify(v);
}

function parseMetadata(src: ByteSource, header: AprHeader, out: AprFile): void {
  const start = header.metadata_offset;
  const end = start + BigInt(header.metadata_size);
  if (start < BigInt(APR_HEADER_BYTES)) {
    out.issues.push(
      issue('F-FILE-003', `metadata_offset ${start} overlaps the ${APR_HEADER_BYTES}-byte header`, false, {
        evidence: { metadata_offset: start.toString() },
      }),
    );
  }
  if (end > BigInt(src.size)) {
    out.issues.push(
      issue('F-FILE-002', `metadata [${start}, ${end}) runs past the end of the file (${src.size} bytes)`, false, {
        evidence: { metadata_offset: start.toString(), metadata_size: header.metadata_size, fileBytes: src.size },
      }),
    );
    return;
  }
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(src.read(Number(start), header.metadata_size));
    // aprender's serde_json refuses this; JSON.parse would build it at any cost (see json-depth.ts).
    if (exceedsJsonDepth(text)) throw new Error(`recursion limit exceeded (${SERDE_JSON_RECURSION_LIMIT} levels of nesting)`);
    json = JSON.parse(text);
  } catch (e) {
    out.issues.push(
      issue('F-FILE-001', `metadata is not valid UTF-8 JSON: ${errorMessage(e)}`, false, {
        evidence: { metadata_size: header.metadata_size },
      }),
    );
    return;
  }
  if (!isJsonObject(json)) {
    out.issues.push(
      issue(
        'F-FILE-001',
        `metadata is not a JSON object (got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json})`,
        false,
      ),
    );
    return;
  }
  out.metadataJson = json;
  for (const [k, v] of Object.entries(json)) {
    const m = toMetaValue(v);
    if (m !== undefined) out.metadata.set(k, m);
  }
}

function parseIndex(src: ByteSource, header: AprHeader, out: AprFile): number {
  const start = header.tensor_index_offset;
  const count = header.tensor_count;
  if (start > BigInt(src.size)) {
    stop('F-FILE-002', `tensor_index_offset ${start} is past the end of the file (${src.size} bytes)`, {
      tensor_index_offset: start.toString(),
      fileBytes: src.size,
    });
  }
  if (start % BigInt(APR_ALIGNMENT) !== 0n) {
    out.issues.push(
      issue('F-FILE-003', `tensor_index_offset ${start} is not a multiple of ${APR_ALIGNMENT}`, false, {
        evidence: { tensor_index_offset: start.toString() },
      }),
    );
  }
  const metadataEnd = header.metadata_offset + BigInt(header.metadata_size);
  if (header.metadata_size > 0 && start < metadataEnd && start + BigInt(APR_MIN_INDEX_ENTRY_BYTES) > header.metadata_offset) {
    out.issues.push(
      issue('F-FILE-003', `tensor index at ${start} overlaps the metadata [${header.metadata_offset}, ${metadataEnd})`, false, {
        evidence: { tensor_index_offset: start.toString(), metadataEnd: metadataEnd.toString() },
      }),
    );
  }
  // Bound the count before the loop: each entry takes at least 20 bytes.
  const need = BigInt(count) * BigInt(APR_MIN_INDEX_ENTRY_BYTES);
  const remaining = BigInt(src.size) - start;
  if (need > remaining) {
    const corrupt = need > BigInt(src.size);
    stop(
      corrupt ? 'F-FILE-001' : 'F-FILE-002',
      corrupt
        ? `implausible tensor_count ${count}: its index needs at least ${need} bytes, more than the whole file (${src.size} bytes)`
        : `file truncated: tensor_count ${count} needs at least ${need} bytes of index at ${start}, only ${remaining} remain`,
      { tensor_count: count, need: need.toString(), remaining: remaining.toString() },
    );
  }
  const cur = new IndexCursor(src, Number(start));
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  for (let i = 0; i < count; i++) {
    const entryAt = cur.pos;
    const nameLen = view(cur.take(2, `name_len of index entry ${i}`)).getUint16(0, true);
    // from_utf8_lossy, as aprender decodes names.
    const name = decoder.decode(cur.take(nameLen, `name of index entry ${i}`));
    const fixed = cur.take(2, `dtype and ndim of '${name}'`);
    const dtype = fixed[0] as number;
    const ndim = fixed[1] as number;
    const rest = view(cur.take(8 * ndim + 16, `dims, offset and size of '${name}'`));
    const dims: bigint[] = [];
    for (let d = 0; d < ndim; d++) dims.push(rest.getBigUint64(8 * d, true));
    out.index.push({
      name,
      name_len: nameLen,
      dtype,
      ndim,
      dims,
      offset: rest.getBigUint64(8 * ndim, true),
      size_bytes: rest.getBigUint64(8 * ndim + 8, true),
      entryAt,
    });
  }
  return cur.pos;
}

/** Check each index entry the way aprender's reader and writer constrain it, and build the tensor table. */
function buildTensors(src: ByteSource, header: AprHeader, indexEnd: number, out: AprFile): TensorEntry[] {
  const data = header.data_offset;
  if (data > BigInt(src.size)) {
    stop('F-FILE-002', `data_offset ${data} is past the end of the file (${src.size} bytes)`, {
      data_offset: data.toString(),
      fileBytes: src.size,
    });
  }
  out.dataOffset = Number(data);
  if (data % BigInt(APR_ALIGNMENT) !== 0n) {
    out.issues.push(
      issue('F-FILE-003', `data_offset ${data} is not a multiple of ${APR_ALIGNMENT}`, false, {
        evidence: { data_offset: data.toString() },
      }),
    );
  }
  if (data < BigInt(indexEnd) && out.index.length > 0) {
    out.issues.push(
      issue('F-FILE-003', `data_offset ${data} overlaps the tensor index, which ends at ${indexEnd}`, false, {
        evidence: { data_offset: data.toString(), indexEnd },
      }),
    );
  }
  const dataEnd = BigInt(Math.max(out.dataOffset, src.size - APR_FOOTER_BYTES));
  const align = BigInt(APR_ALIGNMENT);
  const seen = new Set<string>();
  const entries: TensorEntry[] = [];
  const budget = new IssueBudget(out.issues);
  let previous: AprIndexEntry | undefined;
  for (const e of out.index) {
    const flag = (code: FileCode, message: string, evidence: Record<string, unknown>): void => {
      budget.push(issue(code, message, false, { tensor: e.name, evidence: { entryAt: e.entryAt, ...evidence } }));
    };
    let usable = true;
    if (e.name_len > APR_MAX_NAME_BYTES)
      flag('F-FILE-001', `name is ${e.name_len} bytes, aprender allows at most ${APR_MAX_NAME_BYTES}`, { name_len: e.name_len });
    if (seen.has(e.name)) {
      flag('F-FILE-001', 'duplicate tensor name in the index', {});
      usable = false;
    } else if (previous !== undefined && compareCodePoints(previous.name, e.name) > 0) {
      flag('F-FILE-001', `tensor index not sorted by name: '${e.name}' comes after '${previous.name}'`, { previous: previous.name });
    }
    seen.add(e.name);
    previous = e;
    const dtype = aprDTypeOfCode(e.dtype);
    if (dtype === undefined) {
      flag('F-FILE-001', `unknown APR dtype code ${e.dtype}`, { dtype: e.dtype });
      usable = false;
    }
    if (e.ndim > APR_MAX_DIMS) {
      flag('F-FILE-001', `ndim ${e.ndim} exceeds the ${APR_MAX_DIMS} aprender writes`, { ndim: e.ndim });
      usable = false;
    }
    let elements = 1n;
    for (const d of e.dims) elements *= d;
    if (e.dims.some((d) => d > SAFE) || elements > SAFE) {
      flag('F-FILE-001', `shape [${e.dims.join(', ')}] has ${elements} elements, more than 2^53`, { dims: e.dims.map(String) });
      usable = false;
    }
    if (e.offset % align !== 0n)
      flag('F-FILE-003', `offset ${e.offset} is not a multiple of ${APR_ALIGNMENT}`, { offset: e.offset.toString() });
    const required = dtype === undefined || !usable ? 0n : aprRequiredBytes(dtype, e.dims);
    const start = data + e.offset;
    const end = start + (required > e.size_bytes ? required : e.size_bytes);
    const outOfBounds = end > dataEnd;
    if (outOfBounds) {
      flag(
        'F-FILE-002',
        `data [${start}, ${end}) runs past the end of the data section (${dataEnd}; the file is ${src.size} bytes with a ${APR_FOOTER_BYTES}-byte footer)`,
        {
          start: start.toString(),
          end: end.toString(),
          size_bytes: e.size_bytes.toString(),
          requiredBytes: required.toString(),
        },
      );
    }
    if (!usable || dtype === undefined || start > SAFE || end > SAFE) continue;
    entries.push({
      name: e.name,
      shape: e.dims.map(Number),
      dtype,
      rawType: e.dtype,
      offset: Number(start),
      byteLength: Number(required),
      spanBytes: Number(e.size_bytes),
    });
  }

  // Overlaps: in offset order, each tensor's data must start at or after the previous one's end.
  const spans = out.index
    .map((e) => ({ e, start: e.offset, end: e.offset + e.size_bytes }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0));
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1] as (typeof spans)[number]; // 1 ≤ i < spans.length
    const cur = spans[i] as (typeof spans)[number];
    if (cur.start < prev.end) {
      budget.push(
        issue(
          'F-FILE-003',
          `data [${cur.start}, ${cur.end}) overlaps '${prev.e.name}' [${prev.start}, ${prev.end}) (offsets relative to data_offset)`,
          false,
          {
            tensor: cur.e.name,
            evidence: { start: cur.start.toString(), previous: prev.e.name, previousEnd: prev.end.toString() },
          },
        ),
      );
    }
  }
  budget.close();
  return entries;
}

/**
 * Read an APR v2 file's header, metadata and tensor index. Never throws for malformed input: problems
 * are returned as `issues`; a fatal issue means the tensor table is missing.
 */
export function readApr(src: ByteSource, options: AprReadOptions = {}): AprFile {
  const out: AprFile = {
    format: 'apr',
    metadata: new Map(),
    tensors: [],
    issues: [],
    header: undefined,
    dataOffset: undefined,
    metadataJson: undefined,
    index: [],
  };
  try {
    const header = parseHeader(src, out);
    if (options.verifyFooter ?? true) checkFooter(src, out);
    parseMetadata(src, header, out);
    const indexEnd = parseIndex(src, header, out);
    out.tensors = buildTensors(src, header, indexEnd, out);
  } catch (err) {
    if (err instanceof StopParsing) {
      out.issues.push(err.issue);
    } else {
      // A reader bug or an I/O failure, still reported as data so a matrix run goes on.
      const message = err instanceof Error ? err.message : String(err);
      out.issues.push(issue('F-FILE-001', `unreadable: ${message}`, true, { evidence: { internal: true } }));
    }
    out.tensors = [];
  }
  return out;
}

function isAprDType(d: string): d is AprDType {
  return Object.hasOwn(APR_DTYPE_CODES, d);
}

/**
 * One APR tensor decoded to f32. Q4K/Q6K rows are zero-padded to whole super-blocks in APR, so each
 * row is decoded and its padding dropped (aprender's own `get_tensor_as_f32` decodes them as one flat
 * run, which is only right when cols is a multiple of 256). Throws TensorReadError for an entry whose
 * bytes are not inside the file, whose byteLength is not what dtype × shape require, or whose dtype
 * has no f32 decoder.
 */
export function readAprTensorF32(src: ByteSource, entry: TensorEntry): Float32Array<ArrayBuffer> {
  const { dtype, shape, name } = entry;
  if (!isAprDType(dtype) || !canDequantize(dtype))
    throw new TensorReadError(name, `tensor '${name}': ${dtype} is not an APR dtype with an f32 decoder`);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new TensorReadError(name, `tensor '${name}': bad shape [${shape.join(', ')}]`);
  const required = aprRequiredBytes(dtype, shape.map(BigInt));
  if (required !== BigInt(entry.byteLength)) {
    throw new TensorReadError(
      name,
      `tensor '${name}': ${entry.byteLength} bytes do not hold ${dtype} × [${shape.join(', ')}] (${required} bytes)`,
    );
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = readTensorBytes(src, entry);
  if (dtype !== 'Q4_K' && dtype !== 'Q6_K') return dequantize(dtype, bytes, count);
  const cols = shape.length > 0 ? (shape[shape.length - 1] as number) : 1;
  const out = new Float32Array(count);
  if (cols === 0) return out;
  const rows = count / cols;
  const blocksPerRow = Math.ceil(cols / 256);
  const rowBytes = entry.byteLength / rows;
  for (let r = 0; r < rows; r++) {
    const row = dequantize(dtype, bytes.subarray(r * rowBytes, (r + 1) * rowBytes), blocksPerRow * 256);
    out.set(row.subarray(0, cols), r * cols);
  }
  return out;
}
