/**
 * `tmgt inspect FILE [--json]`: what a model file holds — format, metadata (long arrays summarised),
 * and per tensor its name, shape, dtype, bytes, offset and value statistics (the set `apr tensors
 * --json` reports). Exit 0 for a well-formed file, 1 when the reader raised F-FILE verdicts (they are
 * printed), 2 when the path cannot be read at all.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { terminalSafe } from '../report/parity.js';
import { textTable } from '../report/table.js';
import { errorMessage, HarnessError, UsageError } from '../errors.js';
import { ConcatByteSource, FileByteSource, type ByteSource } from '../formats/byte-source.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import { checkpointWeights, openCheckpointWeights, WEIGHTS_INDEX_FILE } from '../zoo/checkpoint.js';
import { readAprTensorF32 } from '../formats/apr/reader.js';
import { readTensorF32, type GgufFile } from '../formats/gguf/reader.js';
import { isJsonObject } from '../formats/json-depth.js';
import { readModelFile } from '../formats/read-model.js';
import { tensorStats, type TensorStats } from '../formats/stats.js';
import type { FileIssue, MetaValue, ModelFile, TensorEntry } from '../formats/types.js';

export const INSPECT_EXIT = { ok: 0, malformed: 1, unreadable: 2 } as const;

/** Items of a metadata array shown before it is summarised as `{itemType, length, first}`. */
const ARRAY_PREVIEW_ITEMS = 8;
/** Longest metadata string printed whole; longer ones (embedded JSON, chat templates) are cut. */
const MAX_STRING_CHARS = 2048;

/** A model file opened for reading; `close()` releases the file descriptor. */
export interface OpenedModel {
  path: string;
  src: ByteSource;
  file: ModelFile;
  /** Directory holding config.json, if the file sits in an HF checkpoint directory. */
  checkpointDir: string | undefined;
  close(): void;
}

/**
 * Read a model file of any supported format (GGUF, APR, safetensors; `readModelFile` sniffs it from the
 * first bytes). A directory means its model.safetensors. Only an fs failure throws (HarnessError, exit
 * 2); a malformed file comes back with its F-FILE issues.
 */
export function openModelFile(path: string): OpenedModel {
  let filePath = path;
  let src: FileByteSource;
  try {
    if (statSync(path).isDirectory()) {
      if (checkpointWeights(path).kind === 'sharded') return openShardedCheckpoint(path);
      filePath = join(path, 'model.safetensors');
    }
    src = new FileByteSource(filePath);
  } catch (e) {
    throw new HarnessError('E-INPUT', `cannot read ${filePath}: ${errorMessage(e)}`, { cause: e });
  }
  try {
    const file = readModelFile(src);
    const dir = dirname(filePath);
    const checkpointDir = file.format !== 'gguf' && existsSync(join(dir, 'config.json')) ? dir : undefined;
    return { path: filePath, src, file, checkpointDir, close: () => src.close() };
  } catch (e) {
    src.close();
    throw new HarnessError('E-INPUT', `cannot read ${filePath}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * A sharded checkpoint directory as one safetensors file: every shard read through the bounds-checked reader (and
 * the index held to what the shards hold, `openCheckpointWeights`), the tensors in index order at offsets into the
 * shards laid end to end. The `__metadata__` is the first shard's; `shards` says how many files there are.
 */
function openShardedCheckpoint(dir: string): OpenedModel {
  const weights = openCheckpointWeights(dir);
  const parts = [...new Set([...weights.entries.values()].map((e) => e.src))];
  const src = new ConcatByteSource(parts);
  const baseOf = new Map(parts.map((p, i) => [p, src.bases[i] as number])); // one base per part
  const tensors = [...weights.entries.values()].map(({ src: part, entry }) => ({
    ...entry,
    offset: entry.offset + (baseOf.get(part) ?? 0),
  }));
  const first = parts[0];
  const metadata = first === undefined ? new Map<string, MetaValue>() : readSafetensors(first).metadata;
  metadata.set('shards', `${parts.length} files (${WEIGHTS_INDEX_FILE})`);
  const file: ModelFile = { format: 'safetensors', metadata, tensors, issues: [] };
  return { path: join(dir, WEIGHTS_INDEX_FILE), src, file, checkpointDir: dir, close: () => src.close() };
}

/** A metadata value as reported: scalars whole, arrays as type + length + first items. */
export type MetadataSummary =
  | { type: 'array'; itemType: string; length: number; first: (string | number | boolean)[]; isTruncated: boolean }
  | { type: string; value: string | number | boolean; isTruncated?: true };

/** One tensor as reported. */
export interface InspectTensor {
  name: string;
  /** torch order (outermost first). */
  shape: number[];
  dtype: string;
  /** Bytes the tensor's data occupies. */
  bytes: number;
  /** Absolute file offset of the data. */
  offset: number;
  /** null when the data could not be decoded (see statsError). */
  stats: TensorStats | null;
  statsError?: string;
}

/** The `tmgt inspect --json` document. */
export interface InspectReport {
  file: string;
  format: string;
  fileBytes: number;
  /** GGUF only: header version, alignment, data section offset. */
  gguf?: { version: number | undefined; alignment: number; dataOffset: number | undefined };
  /** Reader findings (F-FILE-*); empty for a well-formed file. */
  issues: FileIssue[];
  metadata: Record<string, MetadataSummary>;
  tensorCount: number;
  /** Σ tensor bytes. */
  totalBytes: number;
  /** Σ tensor elements. */
  parameterCount: number;
  tensors: InspectTensor[];
}

function scalar(v: MetaValue): string | number | boolean {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return `[${v.length} items]`;
  return v;
}

function jsType(v: MetaValue): string {
  if (Array.isArray(v)) return 'array';
  return typeof v === 'bigint' ? 'u64' : typeof v;
}

/** The shortest decimal that reads back as the same f32 (1e-5, not 0.000009999999747378752). */
function shortestF32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const c = Number(v.toPrecision(p));
    if (Math.fround(c) === v) return c;
  }
  return v;
}

function summarize(v: MetaValue, type: string | undefined, itemType: string | undefined): MetadataSummary {
  if (Array.isArray(v)) {
    const first = v.slice(0, ARRAY_PREVIEW_ITEMS).map((x) => {
      const s = itemType === 'f32' && typeof x === 'number' ? shortestF32(x) : scalar(x);
      return typeof s === 'string' && s.length > MAX_STRING_CHARS ? s.slice(0, MAX_STRING_CHARS) : s;
    });
    return {
      type: 'array',
      itemType: itemType ?? (v.length > 0 ? jsType(v[0] as MetaValue) /* v.length > 0 */ : 'unknown'),
      length: v.length,
      first,
      isTruncated: v.length > ARRAY_PREVIEW_ITEMS,
    };
  }
  const t = type ?? jsType(v);
  const value = t === 'f32' && typeof v === 'number' ? shortestF32(v) : scalar(v);
  if (typeof value === 'string' && value.length > MAX_STRING_CHARS)
    return { type: t, value: value.slice(0, MAX_STRING_CHARS), isTruncated: true };
  return { type: t, value };
}

function isGguf(file: ModelFile): file is GgufFile {
  return file.format === 'gguf' && 'kvTypes' in file;
}

/** Decode one tensor to f32; throws (TensorReadError, RangeError) when its bytes cannot be decoded. */
export function decodeTensor(file: ModelFile, src: ByteSource, entry: TensorEntry): Float32Array {
  // APR pads K-quant rows to whole super-blocks, so it has its own decoder.
  return file.format === 'apr' ? readAprTensorF32(src, entry) : readTensorF32(src, entry);
}

/** Build the inspect report of an opened file (reads every tensor once for its statistics). */
export function inspectModel(model: OpenedModel): InspectReport {
  const { file, src } = model;
  const metadata: Record<string, MetadataSummary> = {};
  for (const [key, value] of file.metadata) {
    const kv = isGguf(file) ? file.kvTypes.get(key) : undefined;
    metadata[key] = summarize(value, kv?.type ?? (file.format === 'safetensors' ? 'string' : undefined), kv?.itemType);
  }
  const tensors: InspectTensor[] = file.tensors.map((t) => {
    const base = { name: t.name, shape: [...t.shape], dtype: t.dtype, bytes: t.byteLength, offset: t.offset };
    try {
      return { ...base, stats: tensorStats(decodeTensor(file, src, t)) };
    } catch (e) {
      return { ...base, stats: null, statsError: errorMessage(e) };
    }
  });
  const report: InspectReport = {
    file: model.path,
    format: file.format,
    fileBytes: src.size,
    issues: file.issues,
    metadata,
    tensorCount: tensors.length,
    totalBytes: tensors.reduce((s, t) => s + t.bytes, 0),
    parameterCount: tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0),
    tensors,
  };
  if (isGguf(file)) report.gguf = { version: file.version, alignment: file.alignment, dataOffset: file.dataOffset };
  return report;
}

/**
 * JSON for reports: bigint → decimal string; non-finite numbers (which JSON cannot hold) → the
 * strings "Infinity", "-Infinity", "NaN".
 */
export function reportJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      return v;
    },
    1,
  );
}

/** A number for a text table: fixed significant digits, compact. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return '-';
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? '∞' : '-∞';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? Number(v.toPrecision(digits)).toString() : v.toExponential(digits - 1);
}

function metadataLine(key: string, m: MetadataSummary): string {
  if (m.type === 'array' && 'itemType' in m) {
    const items = m.first.map((x) => JSON.stringify(x)).join(', ');
    return `  ${key} = [${m.itemType} × ${m.length}] ${items}${m.isTruncated ? ', …' : ''}`;
  }
  const s = 'value' in m ? m.value : '';
  return `  ${key} (${m.type}) = ${typeof s === 'string' ? JSON.stringify(s) : String(s)}${'isTruncated' in m && m.isTruncated ? ' …' : ''}`;
}

export function issueLine(i: FileIssue): string {
  return `${i.code}${i.tensor === undefined ? '' : ` [${i.tensor}]`}${i.fatal ? ' (fatal)' : ''}: ${i.message}`;
}

/** The human-readable form of an inspect report. */
export function inspectText(r: InspectReport): string[] {
  const lines = [
    `${r.file}: ${r.format}, ${r.fileBytes} bytes, ${r.tensorCount} tensors, ${r.parameterCount} parameters, ${r.totalBytes} tensor bytes`,
  ];
  if (r.gguf) lines.push(`GGUF v${r.gguf.version ?? '?'}, alignment ${r.gguf.alignment}, data at ${r.gguf.dataOffset ?? '?'}`);
  for (const i of r.issues) lines.push(issueLine(i));
  const keys = Object.keys(r.metadata);
  if (keys.length > 0) {
    lines.push('metadata:');
    for (const [k, m] of Object.entries(r.metadata)) lines.push(metadataLine(k, m));
  }
  if (r.tensors.length > 0) {
    const rows = r.tensors.map((t) => [
      t.name,
      `[${t.shape.join(', ')}]`,
      t.dtype,
      String(t.bytes),
      String(t.offset),
      fmt(t.stats?.mean),
      fmt(t.stats?.std),
      fmt(t.stats?.min),
      fmt(t.stats?.max),
      t.stats ? `${(100 * t.stats.zeroFraction).toFixed(1)}%` : '-',
      t.stats ? String(t.stats.nanCount) : '-',
      t.stats ? String(t.stats.infCount) : (t.statsError ?? '-'),
    ]);
    lines.push(...textTable(['name', 'shape', 'dtype', 'bytes', 'offset', 'mean', 'std', 'min', 'max', 'zero', 'nan', 'inf'], rows));
  }
  return lines;
}

/** `tmgt inspect FILE [--json]`; returns the exit code. Unreadable paths throw HarnessError (exit 2). */
export function inspect(args: string[], out: (s: string) => void = (s) => process.stdout.write(s)): number {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('inspect needs exactly one FILE');
  const model = openModelFile(positionals[0] as string); // one positional: checked above
  try {
    const report = inspectModel(model);
    out((values.json ? reportJson(report) : inspectText(report).map(terminalSafe).join('\n')) + '\n');
    return report.issues.length > 0 ? INSPECT_EXIT.malformed : INSPECT_EXIT.ok;
  } finally {
    model.close();
  }
}

/** config.json of the checkpoint directory a file sits in, if any. */
export function readCheckpointConfig(model: OpenedModel): Record<string, unknown> | undefined {
  if (model.checkpointDir === undefined) return undefined;
  try {
    const config: unknown = JSON.parse(readFileSync(join(model.checkpointDir, 'config.json'), 'utf8'));
    return isJsonObject(config) ? config : undefined;
  } catch {
    return undefined;
  }
}
