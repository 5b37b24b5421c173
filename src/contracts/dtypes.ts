/** Storage types: the vocabulary readers, codecs, policies and targets share. Imports nothing. */

/**
 * ggml storage types the codecs decode and quantize (the GGUF tensor types the harness supports).
 * Names follow ggml / safetensors spelling.
 */
export const DTYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q6_K'] as const;
export type GgmlDType = (typeof DTYPES)[number];

/**
 * Storage types beyond that set, so a reader can list every tensor a safetensors or APR file holds:
 * plain numeric types (safetensors spelling), safetensors' 8/6/4-bit floats and complex64, and APR's
 * native quants. APR_Q8 is `[f32 scale][i8 × N]` over the whole tensor and APR_Q4 is 18-byte blocks
 * of 32 over the flattened tensor (formats.md §2): neither is block-per-row. Not every one decodes to
 * f32 (F4, F6_*, C64 do not): see `canDequantize` in codecs/index.ts.
 */
export const EXTRA_DTYPES = [
  'F64',
  'I8',
  'U8',
  'I16',
  'U16',
  'I32',
  'U32',
  'I64',
  'U64',
  'BOOL',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'C64',
  'APR_Q8',
  'APR_Q4',
] as const;
export type ExtraDType = (typeof EXTRA_DTYPES)[number];

/** Storage types the readers know. */
export type DType = GgmlDType | ExtraDType;

/** Every DType, ggml's first. */
export const ALL_DTYPES: readonly DType[] = [...DTYPES, ...EXTRA_DTYPES];
