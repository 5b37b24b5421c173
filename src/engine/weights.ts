/**
 * What every architecture of the bundled engine shares: loading weights from a reader's tensor table
 * (kept as stored blocks, never a whole-model f32 copy), reading hyperparameters from GGUF metadata,
 * and the matrix-vector product llama.cpp's CPU backend computes.
 */
import { dotQ8Activations, Q8_ACTIVATION_TYPES, quantizeActivationsQ8 } from './activations.js';
import type { ByteSource } from '../formats/byte-source.js';
import { dequantize, dotRow, TYPE_INFO } from '../formats/codecs/index.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import type { DType, MetaValue, ModelFile, TensorEntry } from '../formats/types.js';

/** The engine could not load or run a model (→ F-RUNTIME-002). */
export class EngineError extends Error {
  override readonly name = 'EngineError';
}

/** A weight as stored: the engine computes from the stored blocks, row by row. */
export interface Weight {
  dtype: DType;
  rows: number;
  cols: number;
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

/** A model file's tensors by name, checked against the shapes the engine needs as they are loaded. */
export class TensorTable {
  private readonly byName: Map<string, TensorEntry>;
  private readonly flagged: Set<string | undefined>;

  constructor(
    file: ModelFile,
    private readonly src: ByteSource,
  ) {
    const fatal = file.issues.find((i) => i.fatal);
    if (fatal) throw new EngineError(`file is unreadable: ${fatal.code} ${fatal.message}`);
    this.byName = new Map(file.tensors.map((t) => [t.name, t]));
    this.flagged = new Set(file.issues.filter((i) => i.tensor !== undefined).map((i) => i.tensor));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private entry(name: string): TensorEntry {
    const t = this.byName.get(name);
    if (!t) throw new EngineError(`tensor ${name} is missing`);
    if (this.flagged.has(name)) throw new EngineError(`tensor ${name} is malformed`);
    return t;
  }

  /** A 2-D weight [rows, cols] (torch order) kept in its stored type. */
  weight(name: string, rows: number, cols: number): Weight {
    const t = this.entry(name);
    const [r, c] = t.shape.length === 2 ? (t.shape as [number, number]) : [-1, -1];
    if (r !== rows || c !== cols) throw new EngineError(`tensor ${name} has shape [${t.shape.join(', ')}], the engine needs [${rows}, ${cols}]`);
    const info = TYPE_INFO[t.dtype];
    if (cols % info.blockSize !== 0) throw new EngineError(`tensor ${name}: rows of ${cols} do not divide into ${t.dtype} blocks of ${info.blockSize}`);
    return { dtype: t.dtype, rows, cols, rowBytes: (cols / info.blockSize) * info.typeSize, bytes: readTensorBytes(this.src, t) };
  }

  /** A 1-D tensor (norm weight, bias) decoded to f32. */
  vector(name: string, n: number): Float32Array {
    const t = this.entry(name);
    if (t.shape.length !== 1 || t.shape[0] !== n) throw new EngineError(`tensor ${name} has shape [${t.shape.join(', ')}], the engine needs [${n}]`);
    return dequantize(t.dtype, readTensorBytes(this.src, t), n);
  }

  optionalVector(name: string, n: number): Float32Array | undefined {
    return this.byName.has(name) ? this.vector(name, n) : undefined;
  }
}

/** Row `r` of a weight decoded to f32 (an embedding lookup: ggml_get_rows dequantizes the row). */
export function weightRow(w: Weight, r: number): Float32Array {
  if (!Number.isInteger(r) || r < 0 || r >= w.rows) throw new EngineError(`row ${r} outside [0, ${w.rows})`);
  return dequantize(w.dtype, w.bytes.subarray(r * w.rowBytes, (r + 1) * w.rowBytes), w.cols);
}

/**
 * out = W·x (+ bias). For Q8_0/Q4_0 weights the activation row is first quantized to Q8_0, as
 * llama.cpp's CPU matmul does (see activations.ts); the bias is added in f32 afterwards (ggml_add).
 */
export function matvec(w: Weight, x: Float32Array, out: Float32Array, bias?: Float32Array): void {
  if (Q8_ACTIVATION_TYPES.has(w.dtype)) {
    const a = quantizeActivationsQ8(x);
    for (let r = 0; r < w.rows; r++) out[r] = dotQ8Activations(w.dtype, w.bytes, r * w.rowBytes, a, w.cols);
  } else {
    for (let r = 0; r < w.rows; r++) out[r] = dotRow(w.dtype, w.bytes, r * w.rowBytes, x, w.cols);
  }
  if (bias) for (let r = 0; r < w.rows; r++) out[r] = (out[r] as number) + (bias[r] as number);
}
