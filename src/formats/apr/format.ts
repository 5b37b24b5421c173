/**
 * APR v2 layout constants shared by the reader and the writer, as aprender's code (not its spec doc)
 * writes them (formats.md §2; `src/format/v2/{mod,header_impl,tensor_index_impl,writer}.rs`).
 */
import type { DType } from '../types.js';

/** "APR\0". */
export const APR_MAGIC = [0x41, 0x50, 0x52, 0x00] as const;
export const APR_VERSION_MAJOR = 2;
export const APR_VERSION_MINOR = 0;
/** HEADER_SIZE_V2. */
export const APR_HEADER_BYTES = 64;
/** Every section and every tensor's data is padded to this (ALIGNMENT). */
export const APR_ALIGNMENT = 64;
/** The footer: u32 CRC-32 of everything before it. */
export const APR_FOOTER_BYTES = 4;
/** MAX_TENSOR_NAME_LEN: the writer truncates longer names to this many bytes. */
export const APR_MAX_NAME_BYTES = 256;
/** The writer truncates shapes to this many dims (`shape.len().min(8)`). */
export const APR_MAX_DIMS = 8;
/** Smallest index entry: u16 name_len (empty name) + u8 dtype + u8 ndim (0) + u64 offset + u64 size_bytes. */
export const APR_MIN_INDEX_ENTRY_BYTES = 2 + 1 + 1 + 8 + 8;

/** Header flag bits (`AprV2Flags`). */
export const APR_FLAGS = {
  LZ4_COMPRESSED: 0x1,
  ZSTD_COMPRESSED: 0x2,
  ENCRYPTED: 0x4,
  SIGNED: 0x8,
  SHARDED: 0x10,
  QUANTIZED: 0x20,
  HAS_FILTERBANK: 0x40,
  HAS_MODEL_CARD: 0x80,
  STREAMING: 0x100,
  HAS_VOCAB: 0x200,
  /** LAYOUT-002: `AprV2Writer::new` always sets it. */
  LAYOUT_ROW_MAJOR: 0x400,
  /** LAYOUT-002: the reader rejects a file with it set (a GGUF import that skipped the transpose). */
  LAYOUT_COLUMN_MAJOR: 0x800,
} as const;

/**
 * `TensorDType` codes as written (GH-438 ids for the APR-native quants). Q4_K/Q6_K are raw ggml blocks.
 * APR's codes 3–7 are not ggml ids (ggml's F64 is 28): never map APR codes through the ggml table.
 */
export const APR_DTYPE_CODES = {
  F32: 0,
  F16: 1,
  F64: 3,
  I32: 4,
  I64: 5,
  I8: 6,
  U8: 7,
  Q4_K: 12,
  Q6_K: 14,
  BF16: 30,
  APR_Q4: 128,
  APR_Q8: 129,
} as const satisfies Partial<Record<DType, number>>;
export type AprDType = keyof typeof APR_DTYPE_CODES;

/** Pre-GH-438 codes `from_u8` still accepts: 8 = APR Q4, 9 = APR Q8 (not ggml Q8_0 / Q8_1). */
export const APR_LEGACY_DTYPE_CODES: Readonly<Record<number, AprDType>> = { 8: 'APR_Q4', 9: 'APR_Q8' };

const BY_CODE: ReadonlyMap<number, AprDType> = new Map([
  // Object.entries types the keys as string; these are APR_DTYPE_CODES's own keys
  ...(Object.entries(APR_DTYPE_CODES) as [AprDType, number][]).map(([d, c]) => [c, d] as const),
  ...Object.entries(APR_LEGACY_DTYPE_CODES).map(([c, d]) => [Number(c), d] as const),
]);

/** The dtype of an on-disk code (legacy 8/9 included), or undefined. */
export function aprDTypeOfCode(code: number): AprDType | undefined {
  return BY_CODE.get(code);
}

/** K-quant super-block geometry for APR's per-row padded Q4K/Q6K. */
const K_QUANT: Partial<Record<AprDType, { block: bigint; bytes: bigint }>> = {
  Q4_K: { block: 256n, bytes: 144n },
  Q6_K: { block: 256n, bytes: 210n },
};
const PLAIN_BYTES: Partial<Record<AprDType, bigint>> = { F32: 4n, F16: 2n, BF16: 2n, F64: 8n, I32: 4n, I64: 8n, I8: 1n, U8: 1n };

/**
 * Bytes that `dtype` × `shape` require in an APR file, in bigint so a crafted shape cannot overflow:
 * plain types N·size; APR Q8 4+N (0 for an empty tensor: the writer writes nothing); APR Q4 ceil(N/32)·18;
 * Q4K/Q6K `rows·ceil(cols/256)·block_bytes`, because `quantize_q4_k_matrix` zero-pads every row
 * (cols = the last dim, rows = the product of the others; a scalar is one row of one).
 */
export function aprRequiredBytes(dtype: AprDType, shape: readonly bigint[]): bigint {
  const n = shape.reduce((a, b) => a * b, 1n);
  const plain = PLAIN_BYTES[dtype];
  if (plain !== undefined) return n * plain;
  if (dtype === 'APR_Q8') return n === 0n ? 0n : 4n + n;
  if (dtype === 'APR_Q4') return ((n + 31n) / 32n) * 18n;
  const k = K_QUANT[dtype];
  if (k === undefined) throw new Error(`aprRequiredBytes: unhandled dtype ${dtype}`);
  const cols = shape.at(-1) ?? 1n;
  if (cols === 0n) return 0n;
  const rows = n / cols;
  return rows * ((cols + k.block - 1n) / k.block) * k.bytes;
}

/** `align_64`. */
export function alignUp(n: number, a = APR_ALIGNMENT): number {
  return n + ((a - (n % a)) % a);
}

/**
 * Rust `String` order (UTF-8 bytes) = code-point order. JS `<` compares UTF-16 units, which sorts
 * U+10000.. (surrogates) before U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) as number; // i < both lengths, so both code points exist
    const y = b.codePointAt(i) as number;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
