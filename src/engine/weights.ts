/**
 * What every architecture of the bundled engine shares: loading weights from a reader's tensor table
 * (kept as stored blocks, never a whole-model f32 copy) under either naming (llama.cpp's GGUF names, or
 * HF names in APR and safetensors), reading hyperparameters, and the matrix-vector product.
 */
import {
  dotQ8Activations,
  dotQ8KActivations,
  Q8_1_ACTIVATION_TYPES,
  Q8_ACTIVATION_TYPES,
  Q8K_ACTIVATION_TYPES,
  quantizeActivationsQ8,
  quantizeActivationsQ8K,
} from './activations.js';
import type { ByteSource } from '../formats/byte-source.js';
import { dequantize, dotRow, TYPE_INFO } from '../formats/codecs/index.js';
import { APR_Q4_BLOCK_BYTES, F16_MIN_NORMAL } from '../formats/codecs/apr.js';
import { fp16Table } from '../formats/codecs/f16.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import { ggufToHf, type MappedArch } from '../formats/name-map.js';
import type { DType, MetaValue, ModelFile, TensorEntry } from '../formats/types.js';

/** The engine could not load or run a model (→ F-RUNTIME-002). */
export class EngineError extends Error {
  override readonly name = 'EngineError';
}

/**
 * A 2-D weight as stored; the engine computes from the stored blocks. `rows`×`cols` is the product's
 * orientation (out × in, a torch Linear); `isTransposed` means the file stores it [in, out] (an HF GPT-2
 * Conv1D), so a stored row is one input's contribution to every output.
 */
export interface Weight {
  dtype: DType;
  rows: number;
  cols: number;
  isTransposed: boolean;
  /** Stored rows and their length: rows × cols, or cols × rows when transposed. */
  storedRows: number;
  storedCols: number;
  /** Bytes of one stored row for row-addressable types; 0 for APR_Q8/APR_Q4, which span the flattened tensor. */
  rowBytes: number;
  bytes: Uint8Array;
}

export function metaNumber(meta: Map<string, MetaValue>, key: string, fallback?: number): number {
  const v = meta.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (fallback !== undefined) return fallback;
  throw new EngineError(`metadata key ${key} is missing or not a number`);
}

/** `<arch>.vocab_size`, else the tokenizer's token count (llama.cpp's n_vocab), else none. */
export function metaVocab(meta: Map<string, MetaValue>, arch: string): number {
  const tokens = meta.get('tokenizer.ggml.tokens');
  return metaNumber(meta, `${arch}.vocab_size`, Array.isArray(tokens) ? tokens.length : undefined);
}

/** A number from a JSON object (APR metadata, config.json), trying keys in order; a fallback or an EngineError. */
export function jsonNumber(obj: Record<string, unknown>, keys: readonly string[], fallback?: number): number {
  for (const k of keys) {
    const v = obj[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  if (fallback !== undefined) return fallback;
  throw new EngineError(`${keys.join(' / ')} missing or not a number`);
}

/**
 * Where the engine finds a tensor of a role (llama.cpp's GGUF name: `blk.0.attn_q.weight`) in a file,
 * and whether a 2-D weight is stored [in, out].
 */
export interface TensorNames {
  /** The layout the names imply: GGUF (llama Q/K permuted, Conv1D transposed) or HF. */
  layout: 'gguf' | 'hf';
  resolve(role: string): { candidates: string[]; isTransposed: boolean };
}

export const GGUF_NAMES: TensorNames = { layout: 'gguf', resolve: (role) => ({ candidates: [role], isTransposed: false }) };

/** HF names (GPT-2 with or without `transformer.`); GPT-2 Conv1D weights are stored [in, out]. */
export function hfNames(arch: MappedArch): TensorNames {
  return {
    layout: 'hf',
    resolve(role) {
      const m = ggufToHf(arch, role);
      if (m === undefined) return { candidates: [], isTransposed: false };
      const candidates = arch === 'gpt2' && m.name !== 'lm_head.weight' ? [m.name, `transformer.${m.name}`] : [m.name];
      return { candidates, isTransposed: m.transform === 'transpose' };
    },
  };
}

/** A model file's tensors by role, checked against the shapes the engine needs as they are loaded. */
export class TensorTable {
  private readonly byName: Map<string, TensorEntry>;
  private readonly flagged: Set<string | undefined>;

  constructor(
    file: ModelFile,
    private readonly src: ByteSource,
    private readonly names: TensorNames = GGUF_NAMES,
    /** Called on every 2-D weight as it is read: the kernels lay it where they compute from it. */
    private readonly prepare: (w: Weight) => Weight = (w) => w,
  ) {
    const fatal = file.issues.find((i) => i.fatal);
    if (fatal) throw new EngineError(`file is unreadable: ${fatal.code} ${fatal.message}`);
    this.byName = new Map(file.tensors.map((t) => [t.name, t]));
    this.flagged = new Set(file.issues.filter((i) => i.tensor !== undefined).map((i) => i.tensor));
  }

  private find(role: string): { entry: TensorEntry | undefined; name: string; isTransposed: boolean } {
    const { candidates, isTransposed } = this.names.resolve(role);
    const name = candidates.find((n) => this.byName.has(n)) ?? candidates[0] ?? role;
    return { entry: this.byName.get(name), name, isTransposed };
  }

  has(role: string): boolean {
    return this.find(role).entry !== undefined;
  }

  private entry(role: string): { t: TensorEntry; isTransposed: boolean } {
    const { entry, name, isTransposed } = this.find(role);
    if (!entry) throw new EngineError(`tensor ${name} is missing`);
    if (this.flagged.has(name)) throw new EngineError(`tensor ${name} is malformed`);
    if (entry.spanBytes < entry.byteLength)
      throw new EngineError(`tensor ${name}: ${entry.spanBytes} bytes do not hold ${entry.dtype} × [${entry.shape.join(', ')}]`);
    return { t: entry, isTransposed };
  }

  /** A 2-D weight the engine uses as [rows, cols] (out × in), kept in its stored type and layout. */
  weight(role: string, rows: number, cols: number): Weight {
    const { t, isTransposed } = this.entry(role);
    const [storedRows, storedCols] = isTransposed ? [cols, rows] : [rows, cols];
    const [r, c] = t.shape.length === 2 ? (t.shape as [number, number]) : [-1, -1]; // 2-D: checked in the condition
    if (r !== storedRows || c !== storedCols) {
      throw new EngineError(
        `tensor ${t.name} has shape [${t.shape.join(', ')}], the engine needs [${storedRows}, ${storedCols}]${isTransposed ? ' (Conv1D [in, out])' : ''}`,
      );
    }
    const info = TYPE_INFO[t.dtype];
    if (info.isWholeTensor !== true && storedCols % info.blockSize !== 0) {
      throw new EngineError(`tensor ${t.name}: rows of ${storedCols} do not divide into ${t.dtype} blocks of ${info.blockSize}`);
    }
    const rowBytes = info.isWholeTensor === true ? 0 : (storedCols / info.blockSize) * info.typeSize;
    return this.prepare({
      dtype: t.dtype,
      rows,
      cols,
      isTransposed,
      storedRows,
      storedCols,
      rowBytes,
      bytes: readTensorBytes(this.src, t),
    });
  }

  /** A 1-D tensor (norm weight, bias) decoded to f32. */
  vector(role: string, n: number): Float32Array {
    const { t } = this.entry(role);
    if (t.shape.length !== 1 || t.shape[0] !== n)
      throw new EngineError(`tensor ${t.name} has shape [${t.shape.join(', ')}], the engine needs [${n}]`);
    return dequantize(t.dtype, readTensorBytes(this.src, t), n);
  }

  optionalVector(role: string, n: number): Float32Array | undefined {
    return this.has(role) ? this.vector(role, n) : undefined;
  }
}

/**
 * Stored row `i` of a weight decoded to f32 — read only: an aligned F32 row is a view of the file's
 * bytes. Block types decode the row's blocks; APR_Q8 reads its one scale and the row's codes; APR_Q4
 * decodes the 32-blocks of the flattened tensor that cover the row.
 */
export function storedRow(w: Weight, i: number): Float32Array {
  const n = w.storedCols;
  if (w.dtype === 'APR_Q8') {
    // dequantizeAprQ8, for one row: f32(code · scale) with the stored f32 scale.
    const scale = new DataView(w.bytes.buffer, w.bytes.byteOffset, 4).getFloat32(0, true);
    const out = new Float32Array(n);
    const base = 4 + i * n;
    for (let j = 0; j < n; j++) out[j] = Math.fround((((w.bytes[base + j] as number) << 24) >> 24) * scale);
    return out;
  }
  if (w.dtype === 'APR_Q4') {
    // dequantizeAprQ4 over the flattened range [i·n, (i+1)·n): blocks of 32 ignore rows; even index →
    // low nibble; a NaN, Inf or subnormal f16 scale decodes as 0.
    const out = new Float32Array(n);
    const t = fp16Table();
    let block = -1;
    let scale = 0;
    for (let j = 0, e = i * n; j < n; j++, e++) {
      const b = e >>> 5;
      const o = b * APR_Q4_BLOCK_BYTES;
      if (b !== block) {
        block = b;
        const raw = t[(w.bytes[o] as number) | ((w.bytes[o + 1] as number) << 8)] as number;
        scale = Number.isFinite(raw) && Math.abs(raw) >= F16_MIN_NORMAL ? raw : 0;
      }
      const within = e & 31;
      const byte = w.bytes[o + 2 + (within >> 1)] as number;
      out[j] = ((within & 1 ? byte >> 4 : byte & 0x0f) - 8) * scale;
    }
    return out;
  }
  const at = w.bytes.byteOffset + i * w.rowBytes;
  // An aligned F32 row is read in place (a view, never written to).
  if (w.dtype === 'F32' && at % 4 === 0) return new Float32Array(w.bytes.buffer, at, n);
  return dequantize(w.dtype, w.bytes.subarray(i * w.rowBytes, (i + 1) * w.rowBytes), n);
}

/** Row `r` of an embedding-like weight decoded to f32, a fresh copy (ggml_get_rows dequantizes the row). */
export function weightRow(w: Weight, r: number): Float32Array {
  if (!Number.isInteger(r) || r < 0 || r >= w.rows) throw new EngineError(`row ${r} outside [0, ${w.rows})`);
  if (w.isTransposed) throw new EngineError('an embedding cannot be stored transposed');
  // Callers own (and modify) the row: never hand out a view of the file's bytes.
  const row = storedRow(w, r);
  return row.buffer === w.bytes.buffer ? row.slice() : row;
}

/**
 * out = W·x (+ bias). For GGUF block-quantized weights the activation row is first quantized to the weight
 * type's `vec_dot_type` (Q8_0, Q8_1 or Q8_K), as llama.cpp's CPU matmul does (see activations.ts); the bias is added in f32 afterwards (ggml_add).
 * APR's whole-tensor quants decode one row at a time. A transposed (Conv1D [in, out]) weight is
 * accumulated stored row by stored row — Σ_i x[i]·W[i, :] — in f64.
 */
export function matvec(w: Weight, x: Float32Array, out: Float32Array, bias?: Float32Array): void {
  if (w.isTransposed) {
    const acc = new Float64Array(w.rows);
    for (let i = 0; i < w.cols; i++) {
      const xi = x[i] as number;
      const row = storedRow(w, i);
      for (let j = 0; j < w.rows; j++) acc[j] = (acc[j] as number) + xi * (row[j] as number);
    }
    for (let j = 0; j < w.rows; j++) out[j] = acc[j] as number;
  } else if (Q8_ACTIVATION_TYPES.has(w.dtype) || Q8_1_ACTIVATION_TYPES.has(w.dtype)) {
    const a = quantizeActivationsQ8(x);
    for (let r = 0; r < w.rows; r++) out[r] = dotQ8Activations(w.dtype, w.bytes, r * w.rowBytes, a, w.cols);
  } else if (Q8K_ACTIVATION_TYPES.has(w.dtype)) {
    const a = quantizeActivationsQ8K(x);
    for (let r = 0; r < w.rows; r++) out[r] = dotQ8KActivations(w.dtype, w.bytes, r * w.rowBytes, a, w.cols);
  } else if (w.rowBytes === 0) {
    for (let r = 0; r < w.rows; r++) {
      const row = storedRow(w, r);
      let s = 0;
      for (let i = 0; i < w.cols; i++) s += (row[i] as number) * (x[i] as number);
      out[r] = s;
    }
  } else {
    for (let r = 0; r < w.rows; r++) out[r] = dotRow(w.dtype, w.bytes, r * w.rowBytes, x, w.cols);
  }
  if (bias) for (let r = 0; r < w.rows; r++) out[r] = (out[r] as number) + (bias[r] as number);
}
