import type { ByteSource } from '../byte-source.js';
import type { DType, FileIssue, MetaValue, ModelFile, TensorEntry } from '../types.js';

/** safetensors' own limit on the JSON header (`MAX_HEADER_SIZE` in safetensors/src/tensor.rs). */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Record<string, { dtype: DType; bytes: number } | undefined> = {
  F32: { dtype: 'F32', bytes: 4 },
  F16: { dtype: 'F16', bytes: 2 },
  BF16: { dtype: 'BF16', bytes: 2 },
};

function fail(message: string, tensor?: string): FileIssue {
  return tensor === undefined
    ? { code: 'F-FILE-001', message, fatal: true }
    : { code: 'F-FILE-001', message, fatal: true, tensor };
}

/**
 * Read a safetensors header with the reference implementation's validation (`Metadata::validate`):
 * offsets start at 0, no holes or overlaps, exact sizes, and the buffer covers the rest of the file.
 * Malformed input yields issues, never an exception.
 */
export function readSafetensors(src: ByteSource): ModelFile {
  const empty = (issue: FileIssue): ModelFile => ({ format: 'safetensors', metadata: new Map(), tensors: [], issues: [issue] });
  if (src.size < 8) return empty(fail(`file is ${src.size} bytes, shorter than the 8-byte header length`));
  const n = new DataView(src.read(0, 8).slice().buffer).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) return empty(fail(`header length ${n} exceeds limit ${MAX_HEADER_BYTES}`));
  const headerBytes = Number(n);
  if (8 + headerBytes > src.size) {
    return empty({ code: 'F-FILE-002', message: `header length ${headerBytes} runs past end of file (${src.size} bytes)`, fatal: true });
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, headerBytes)));
  } catch (e) {
    return empty(fail(`header is not valid UTF-8 JSON: ${(e as Error).message}`));
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return empty(fail('header is not a JSON object'));

  const metadata = new Map<string, MetaValue>();
  const raw: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value === 'object' && value !== null) {
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (typeof v === 'string') metadata.set(k, v);
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dt = typeof info?.dtype === 'string' ? DTYPE_BYTES[info.dtype] : undefined;
    if (!dt) return empty(fail(`tensor dtype ${JSON.stringify(info?.dtype)} is not supported`, name));
    const shape = info.shape;
    const offs = info.data_offsets;
    const isDim = (d: unknown): d is number => Number.isSafeInteger(d) && (d as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(isDim)) return empty(fail(`shape ${JSON.stringify(shape)} is not a list of sizes`, name));
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isDim)) {
      return empty(fail(`data_offsets ${JSON.stringify(offs)} is not [begin, end]`, name));
    }
    const [begin, end] = offs as [number, number];
    raw.push({ name, dtype: dt.dtype, shape: shape as number[], begin, end });
  }

  const dataStart = 8 + headerBytes;
  const issues: FileIssue[] = [];
  raw.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectBegin = 0;
  const tensors: TensorEntry[] = [];
  for (const t of raw) {
    let count = 1;
    for (const d of t.shape) count *= d;
    const byteLength = count * (DTYPE_BYTES[t.dtype]?.bytes ?? 0);
    if (!Number.isSafeInteger(byteLength)) return empty(fail(`element count of ${JSON.stringify(t.shape)} overflows`, t.name));
    if (t.end < t.begin) return empty(fail(`data_offsets end ${t.end} < begin ${t.begin}`, t.name));
    if (t.begin !== expectBegin) {
      issues.push({ code: 'F-FILE-003', message: `tensor has offset ${t.begin}, expected ${expectBegin} (hole or overlap)`, tensor: t.name, fatal: false });
    }
    expectBegin = t.end;
    tensors.push({ name: t.name, shape: t.shape, dtype: t.dtype, rawType: 0, offset: dataStart + t.begin, byteLength, spanBytes: t.end - t.begin });
  }
  if (dataStart + expectBegin > src.size) {
    issues.push({ code: 'F-FILE-002', message: `data ends at ${dataStart + expectBegin}, past end of file (${src.size} bytes)`, fatal: false });
    for (const t of tensors) {
      if (t.offset + t.spanBytes > src.size) issues.push({ code: 'F-FILE-002', message: `tensor data [${t.offset}, ${t.offset + t.spanBytes}) past end of file (${src.size} bytes)`, tensor: t.name, fatal: false });
    }
  } else if (dataStart + expectBegin < src.size) {
    issues.push({ code: 'F-FILE-002', message: `buffer is ${src.size - dataStart} bytes but tensors cover ${expectBegin} (MetadataIncompleteBuffer)`, fatal: false });
  }
  return { format: 'safetensors', metadata, tensors, issues };
}
