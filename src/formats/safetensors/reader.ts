/**
 * safetensors reader with the reference implementation's validation (`SafeTensors::read_metadata` and
 * `Metadata::validate`, formats.md §3): header ≤ 100 MB, UTF-8 JSON object, every tensor entry a known
 * dtype + shape + [begin, end], tensors contiguous from 0 with no holes or overlaps after sorting by
 * offsets, sizes exact (with overflow checks), and `8 + N + last_end == file_len`. Rank-0 and
 * zero-size tensors are allowed. Malformed input yields issues, never an exception.
 *
 * Where the reference rejects the whole file, this reader reports each problem and keeps every tensor
 * it can still place, so a report can say what is wrong with which tensor:
 * - F-FILE-001: header too small / too large / not UTF-8 JSON / not an object (fatal); a bad entry
 *   (unknown dtype, malformed shape or data_offsets, numbers past 2^53, size overflow, sub-byte total not
 *   whole bytes, `end − begin` ≠ dtype × shape) or a bad `__metadata__` (not fatal).
 * - F-FILE-002: the header length runs past the end (fatal); tensor data past the end of the file, or
 *   a buffer longer than the tensors cover (MetadataIncompleteBuffer).
 * - F-FILE-003: a hole, an overlap, or end < begin.
 *
 * Every known dtype is listed, including those `dequantize` cannot decode (F4, F6_*, C64).
 * `rawType` is the dtype's position in the Rust `Dtype` enum.
 */
import { errorMessage } from '../../errors.js';
import type { ByteSource } from '../byte-source.js';
import { canDequantize, dequantize } from '../codecs/index.js';
import { readTensorBytes, TensorReadError } from '../gguf/reader.js';
import { exceedsJsonDepth, isJsonObject, SERDE_JSON_RECURSION_LIMIT } from '../json-depth.js';
import type { FileCode, FileIssue, MetaValue, ModelFile, TensorEntry } from '../types.js';
import { isSafetensorsDType, safetensorsByteLength, safetensorsDTypeRank, type SafetensorsDType } from './dtypes.js';

/** safetensors' own limit on the JSON header (`MAX_HEADER_SIZE` in safetensors/src/tensor.rs). */
export const MAX_HEADER_BYTES = 100_000_000;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** What `readSafetensors` returns: the common ModelFile plus the header geometry. */
export interface SafetensorsFile extends ModelFile {
  format: 'safetensors';
  /** N, the JSON header's byte length (padding included); undefined if unreadable. */
  headerBytes: number | undefined;
  /** Absolute offset of the byte buffer (8 + N); undefined if the header could not be read. */
  dataOffset: number | undefined;
}

/** One header entry as stored (spec names), once its fields parsed. */
interface RawEntry {
  name: string;
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function issue(code: FileCode, message: string, fatal: boolean, extra: Partial<FileIssue> = {}): FileIssue {
  return { code, message, fatal, ...extra };
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** Check one tensor entry's fields; a reason string when they do not parse. */
function parseEntry(name: string, value: unknown): RawEntry | string {
  if (!isJsonObject(value)) return `entry is ${show(value)}, not {dtype, shape, data_offsets}`;
  const { dtype, shape, data_offsets: offs } = value;
  if (typeof dtype !== 'string') return `dtype ${show(dtype)} is not a string`;
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    return `shape ${show(shape)} is not a list of non-negative integers ≤ 2^53`;
  }
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isIndex)) {
    return `data_offsets ${show(offs)} is not [begin, end] of non-negative integers ≤ 2^53`;
  }
  // offs: two indices, checked above (a length check does not narrow to a tuple)
  return { name, dtype, shape, data_offsets: offs as [number, number] };
}

/**
 * Read a safetensors header and validate it as the reference implementation does (see the module
 * comment for the codes). Never throws for malformed input.
 */
export function readSafetensors(src: ByteSource): SafetensorsFile {
  const out: SafetensorsFile = {
    format: 'safetensors',
    metadata: new Map<string, MetaValue>(),
    tensors: [],
    issues: [],
    headerBytes: undefined,
    dataOffset: undefined,
  };
  const fatal = (code: FileCode, message: string, evidence?: Record<string, unknown>): SafetensorsFile => {
    out.issues.push(issue(code, message, true, evidence === undefined ? {} : { evidence }));
    return out;
  };
  try {
    if (src.size < 8) return fatal('F-FILE-001', `file is ${src.size} bytes, shorter than the 8-byte header length (HeaderTooSmall)`);
    const n = new DataView(src.read(0, 8).slice().buffer).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      return fatal('F-FILE-001', `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes (HeaderTooLarge)`, {
        headerBytes: n.toString(),
      });
    }
    const headerBytes = Number(n);
    if (8 + headerBytes > src.size) {
      return fatal(
        'F-FILE-002',
        `file truncated: header length ${headerBytes} runs past the end of the file (${src.size} bytes; InvalidHeaderLength)`,
        {
          headerBytes,
          fileBytes: src.size,
        },
      );
    }
    out.headerBytes = headerBytes;
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, headerBytes));
    } catch {
      return fatal('F-FILE-001', 'header is not valid UTF-8 (InvalidHeader)');
    }
    if (exceedsJsonDepth(text)) {
      return fatal(
        'F-FILE-001',
        `header is not valid JSON (InvalidHeaderDeserialization): recursion limit exceeded (${SERDE_JSON_RECURSION_LIMIT} levels of nesting)`,
      );
    }
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (e) {
      return fatal('F-FILE-001', `header is not valid JSON (InvalidHeaderDeserialization): ${errorMessage(e)}`);
    }
    if (!isJsonObject(header)) {
      return fatal(
        'F-FILE-001',
        `header is ${Array.isArray(header) ? 'an array' : show(header)}, not a JSON object (InvalidHeaderDeserialization)`,
      );
    }
    out.dataOffset = 8 + headerBytes;
    buildTensors(src, header, out);
  } catch (err) {
    // A reader bug or an I/O failure, still reported as data so a matrix run goes on.
    const message = err instanceof Error ? err.message : String(err);
    out.issues.push(issue('F-FILE-001', `unreadable: ${message}`, true, { evidence: { internal: true } }));
    out.tensors = [];
  }
  return out;
}

function buildTensors(src: ByteSource, header: Record<string, unknown>, out: SafetensorsFile): void {
  const flag = (code: FileCode, message: string, tensor?: string, evidence?: Record<string, unknown>): void => {
    out.issues.push(
      issue(code, message, false, { ...(tensor === undefined ? {} : { tensor }), ...(evidence === undefined ? {} : { evidence }) }),
    );
  };
  const raw: RawEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        flag('F-FILE-001', `__metadata__ is ${show(value)}, not an object of strings`);
        continue;
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v === 'string') out.metadata.set(k, v);
        else flag('F-FILE-001', `__metadata__['${k}'] is ${show(v)}, not a string`, undefined, { key: k });
      }
      continue;
    }
    const e = parseEntry(name, value);
    if (typeof e === 'string') flag('F-FILE-001', e, name);
    else raw.push(e);
  }

  // Metadata::deserialize sorts by (begin, end) before validating.
  raw.sort((a, b) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  const dataStart = out.dataOffset as number; // readSafetensors sets it before it calls buildTensors
  let expected = 0;
  for (const t of raw) {
    const [begin, end] = t.data_offsets;
    if (end < begin) {
      flag('F-FILE-003', `data_offsets [${begin}, ${end}): end < begin (InvalidOffset)`, t.name, { begin, end });
    } else if (begin !== expected) {
      const what = begin > expected ? `a hole of ${begin - expected} bytes` : `an overlap of ${expected - begin} bytes`;
      flag('F-FILE-003', `tensor has offset ${begin}, expected ${expected}: ${what} (InvalidOffset)`, t.name, { begin, expected });
    }
    expected = end;
    if (!isSafetensorsDType(t.dtype)) {
      flag('F-FILE-001', `unknown dtype ${show(t.dtype)}`, t.name, { dtype: t.dtype });
      continue;
    }
    const dtype: SafetensorsDType = t.dtype;
    const required = safetensorsByteLength(dtype, t.shape.map(BigInt));
    if (typeof required !== 'bigint') {
      flag('F-FILE-001', required.reason, t.name, { shape: t.shape, dtype });
      continue;
    }
    if (required > SAFE) {
      flag('F-FILE-001', `${dtype} × [${t.shape.join(', ')}] needs ${required} bytes, more than 2^53`, t.name, { shape: t.shape, dtype });
      continue;
    }
    const span = Math.max(0, end - begin);
    if (end >= begin && BigInt(span) !== required) {
      flag(
        'F-FILE-001',
        `data_offsets span ${end - begin} bytes but ${dtype} × [${t.shape.join(', ')}] needs ${required} (TensorInvalidInfo)`,
        t.name,
        {
          spanBytes: end - begin,
          requiredBytes: Number(required),
        },
      );
    }
    const entry: TensorEntry = {
      name: t.name,
      shape: t.shape,
      dtype,
      rawType: safetensorsDTypeRank(dtype),
      offset: dataStart + begin,
      byteLength: Number(required),
      spanBytes: span,
    };
    if (entry.offset + Math.max(span, entry.byteLength) > src.size) {
      flag(
        'F-FILE-002',
        `tensor data [${entry.offset}, ${entry.offset + Math.max(span, entry.byteLength)}) runs past the end of the file (${src.size} bytes)`,
        t.name,
        {
          start: entry.offset,
          fileBytes: src.size,
        },
      );
    }
    out.tensors.push(entry);
  }
  // `8 + N + last_end == file_len` (MetadataIncompleteBuffer), last_end being the end of the last tensor in offset order.
  const bufferBytes = src.size - dataStart;
  if (expected > bufferBytes) {
    flag(
      'F-FILE-002',
      `file truncated: tensors cover ${expected} bytes of buffer, the file holds ${bufferBytes} after the header`,
      undefined,
      { coveredBytes: expected, bufferBytes },
    );
  } else if (expected < bufferBytes) {
    flag('F-FILE-002', `buffer is ${bufferBytes} bytes but tensors cover ${expected} (MetadataIncompleteBuffer)`, undefined, {
      coveredBytes: expected,
      bufferBytes,
    });
  }
}

/**
 * One safetensors tensor decoded to f32 (a view of the source for F32 is never returned; always a copy).
 * Throws TensorReadError for bytes outside the file, a byteLength that is not dtype × shape, or a dtype
 * with no f32 decoder (F4, F6_*, C64).
 */
export function readSafetensorsTensorF32(src: ByteSource, entry: TensorEntry): Float32Array<ArrayBuffer> {
  const { name, dtype, shape } = entry;
  if (!isSafetensorsDType(dtype) || !canDequantize(dtype)) throw new TensorReadError(name, `tensor '${name}': ${dtype} has no f32 decoder`);
  const required = safetensorsByteLength(dtype, shape.map(BigInt));
  if (typeof required !== 'bigint' || required !== BigInt(entry.byteLength)) {
    throw new TensorReadError(name, `tensor '${name}': ${entry.byteLength} bytes do not hold ${dtype} × [${shape.join(', ')}]`);
  }
  return dequantize(
    dtype,
    readTensorBytes(src, entry),
    shape.reduce((a, b) => a * b, 1),
  );
}
