/**
 * Codecs for the ggml storage types the harness reads and writes: sizes, dequantizers, reference
 * quantizers (bit-exact copies of ggml's `quantize_row_*_ref`), and a row dot product for the engine.
 * Pure functions over byte arrays; no fs.
 */
import { DTYPES, EXTRA_DTYPES, type DType, type ExtraDType } from '../types.js';
import { aprQ4ByteLength, aprQ8ByteLength, DECODABLE_EXTRA_DTYPES, dequantizeExtra, quantizeExtra } from './apr.js';
import { dequantizeBf16, dotBf16, quantizeBf16 } from './bf16.js';
import { dequantizeF16, dotF16, quantizeF16 } from './f16.js';
import { dequantizeQ4_K, dequantizeQ6_K, quantizeQ4_K, quantizeQ6_K } from './k-quants.js';
import { dequantizeQ4_0, dotQ4_0, quantizeQ4_0, type LegacyQuantOptions } from './q4_0.js';
import { dequantizeQ4_1, quantizeQ4_1 } from './q4_1.js';
import { dequantizeQ5_0, quantizeQ5_0 } from './q5_0.js';
import { dequantizeQ5_1, quantizeQ5_1 } from './q5_1.js';
import { dequantizeQ8_0, dotQ8_0, quantizeQ8_0 } from './q8_0.js';

export { fp16BitsToFp32, fp32ToFp16Bits } from './f16.js';
export { bf16BitsToFp32, fp32ToBf16Bits } from './bf16.js';
export { DEFAULT_FMA, type LegacyQuantOptions } from './q4_0.js';
export { dequantizeAprQ4, dequantizeAprQ8, quantizeAprQ4, quantizeAprQ8, type AprQuantOptions } from './apr.js';

/** ggml type id, elements per block and bytes per block of one storage type. */
export interface TypeInfo {
  /** ggml type id; -1 for a type ggml does not have (safetensors-only or APR-native). */
  ggmlId: number;
  blockSize: number;
  typeSize: number;
  /**
   * true for APR_Q8 / APR_Q4: the encoding spans the flattened tensor (one scale per tensor, or
   * 32-element blocks that ignore rows), so a row cannot be addressed on its own and sizes come from
   * `tensorByteLength`, not blockSize/typeSize.
   */
  isWholeTensor?: boolean;
}

/**
 * Geometry of the extra storage types. F4 packs 2 elements per byte and F6 4 per 3 bytes, so a tensor of
 * them must be a whole number of bytes (safetensors' rule); APR_Q4's block is nominal (any N, last block
 * padded) and APR_Q8's size is 4 + N.
 */
const EXTRA_TYPE_INFO: Record<ExtraDType, TypeInfo> = {
  F64: { ggmlId: 28, blockSize: 1, typeSize: 8 },
  I8: { ggmlId: 24, blockSize: 1, typeSize: 1 },
  U8: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  I16: { ggmlId: 25, blockSize: 1, typeSize: 2 },
  U16: { ggmlId: -1, blockSize: 1, typeSize: 2 },
  I32: { ggmlId: 26, blockSize: 1, typeSize: 4 },
  U32: { ggmlId: -1, blockSize: 1, typeSize: 4 },
  I64: { ggmlId: 27, blockSize: 1, typeSize: 8 },
  U64: { ggmlId: -1, blockSize: 1, typeSize: 8 },
  BOOL: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  F8_E4M3: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  F8_E5M2: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  F8_E8M0: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  F8_E4M3FNUZ: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  F8_E5M2FNUZ: { ggmlId: -1, blockSize: 1, typeSize: 1 },
  F4: { ggmlId: -1, blockSize: 2, typeSize: 1 },
  F6_E2M3: { ggmlId: -1, blockSize: 4, typeSize: 3 },
  F6_E3M2: { ggmlId: -1, blockSize: 4, typeSize: 3 },
  C64: { ggmlId: -1, blockSize: 1, typeSize: 8 },
  APR_Q8: { ggmlId: -1, blockSize: 1, typeSize: 1, isWholeTensor: true },
  APR_Q4: { ggmlId: -1, blockSize: 32, typeSize: 18, isWholeTensor: true },
};

const EXTRA_SET: ReadonlySet<DType> = new Set<DType>(EXTRA_DTYPES);

/** Whether `dtype` is one of the extra (non-ggml-codec) storage types. */
export function isExtraDType(dtype: DType): dtype is ExtraDType {
  return EXTRA_SET.has(dtype);
}

/** Whether `dequantize` can decode `dtype` to f32 (every ggml type; not F4, F6_*, C64). */
export function canDequantize(dtype: DType): boolean {
  return !isExtraDType(dtype) || DECODABLE_EXTRA_DTYPES.has(dtype);
}

/** ggml ids and block geometry (`include/ggml.h`, `src/ggml-common.h`; formats.md §1.2–1.3), then the extra types. */
export const TYPE_INFO: Record<DType, TypeInfo> = {
  F32: { ggmlId: 0, blockSize: 1, typeSize: 4 },
  F16: { ggmlId: 1, blockSize: 1, typeSize: 2 },
  Q4_0: { ggmlId: 2, blockSize: 32, typeSize: 18 },
  Q4_1: { ggmlId: 3, blockSize: 32, typeSize: 20 },
  Q5_0: { ggmlId: 6, blockSize: 32, typeSize: 22 },
  Q5_1: { ggmlId: 7, blockSize: 32, typeSize: 24 },
  Q8_0: { ggmlId: 8, blockSize: 32, typeSize: 34 },
  Q4_K: { ggmlId: 12, blockSize: 256, typeSize: 144 },
  Q6_K: { ggmlId: 14, blockSize: 256, typeSize: 210 },
  BF16: { ggmlId: 30, blockSize: 1, typeSize: 2 },
  ...EXTRA_TYPE_INFO,
};

/**
 * Every ggml type id a GGUF file may legally carry, including the ones the harness does not decode,
 * so the reader can still check the layout of a file that uses them. Ids 4, 5, 31–33 and 36–38 were
 * removed from ggml; NVFP4/Q1_0/Q2_0 (40–42) are recent and their sizes are not pinned here, so a
 * tensor of those types is reported as unsupported without a size.
 */
export const GGML_TYPES: ReadonlyMap<number, { name: string; blockSize?: number; typeSize?: number }> = new Map([
  [0, { name: 'F32', blockSize: 1, typeSize: 4 }],
  [1, { name: 'F16', blockSize: 1, typeSize: 2 }],
  [2, { name: 'Q4_0', blockSize: 32, typeSize: 18 }],
  [3, { name: 'Q4_1', blockSize: 32, typeSize: 20 }],
  [6, { name: 'Q5_0', blockSize: 32, typeSize: 22 }],
  [7, { name: 'Q5_1', blockSize: 32, typeSize: 24 }],
  [8, { name: 'Q8_0', blockSize: 32, typeSize: 34 }],
  [9, { name: 'Q8_1', blockSize: 32, typeSize: 36 }],
  [10, { name: 'Q2_K', blockSize: 256, typeSize: 84 }],
  [11, { name: 'Q3_K', blockSize: 256, typeSize: 110 }],
  [12, { name: 'Q4_K', blockSize: 256, typeSize: 144 }],
  [13, { name: 'Q5_K', blockSize: 256, typeSize: 176 }],
  [14, { name: 'Q6_K', blockSize: 256, typeSize: 210 }],
  [15, { name: 'Q8_K', blockSize: 256, typeSize: 292 }],
  [16, { name: 'IQ2_XXS', blockSize: 256, typeSize: 66 }],
  [17, { name: 'IQ2_XS', blockSize: 256, typeSize: 74 }],
  [18, { name: 'IQ3_XXS', blockSize: 256, typeSize: 98 }],
  [19, { name: 'IQ1_S', blockSize: 256, typeSize: 50 }],
  [20, { name: 'IQ4_NL', blockSize: 32, typeSize: 18 }],
  [21, { name: 'IQ3_S', blockSize: 256, typeSize: 110 }],
  [22, { name: 'IQ2_S', blockSize: 256, typeSize: 82 }],
  [23, { name: 'IQ4_XS', blockSize: 256, typeSize: 136 }],
  [24, { name: 'I8', blockSize: 1, typeSize: 1 }],
  [25, { name: 'I16', blockSize: 1, typeSize: 2 }],
  [26, { name: 'I32', blockSize: 1, typeSize: 4 }],
  [27, { name: 'I64', blockSize: 1, typeSize: 8 }],
  [28, { name: 'F64', blockSize: 1, typeSize: 8 }],
  [29, { name: 'IQ1_M', blockSize: 256, typeSize: 56 }],
  [30, { name: 'BF16', blockSize: 1, typeSize: 2 }],
  [34, { name: 'TQ1_0', blockSize: 256, typeSize: 54 }],
  [35, { name: 'TQ2_0', blockSize: 256, typeSize: 66 }],
  [39, { name: 'MXFP4', blockSize: 32, typeSize: 17 }],
  [40, { name: 'NVFP4' }],
  [41, { name: 'Q1_0' }],
  [42, { name: 'Q2_0' }],
]);

// Only the ggml codec types: I8…F64 have ggml ids too, but the GGUF reader keeps reporting them as unsupported.
const BY_GGML_ID: ReadonlyMap<number, DType> = new Map(DTYPES.map((dtype) => [TYPE_INFO[dtype].ggmlId, dtype]));

/** The DType of a ggml type id, or undefined for an id the harness does not decode (I8…F64 included). */
export function ggmlIdToDType(id: number): DType | undefined {
  return BY_GGML_ID.get(id);
}

/** Bytes that `elementCount` elements of `dtype` occupy; undefined unless they fill whole blocks. */
export function tensorByteLength(dtype: DType, elementCount: number): number | undefined {
  if (dtype === 'APR_Q8' || dtype === 'APR_Q4') {
    if (!Number.isSafeInteger(elementCount) || elementCount < 0) return undefined;
    const n = dtype === 'APR_Q8' ? aprQ8ByteLength(elementCount) : aprQ4ByteLength(elementCount);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const { blockSize, typeSize } = TYPE_INFO[dtype];
  if (!Number.isSafeInteger(elementCount) || elementCount < 0 || elementCount % blockSize !== 0) {
    return undefined;
  }
  const n = (elementCount / blockSize) * typeSize;
  return Number.isSafeInteger(n) ? n : undefined;
}

function requireBytes(dtype: DType, bytes: Uint8Array, count: number, byteOffset = 0): number {
  const need = tensorByteLength(dtype, count);
  if (need === undefined) {
    throw new RangeError(`${dtype}: ${count} elements is not a whole number of ${TYPE_INFO[dtype].blockSize}-element blocks`);
  }
  if (byteOffset < 0 || byteOffset + need > bytes.length) {
    throw new RangeError(`${dtype}: ${count} elements need ${need} bytes at ${byteOffset}, have ${bytes.length}`);
  }
  return need;
}

/** Decode the first `count` elements of `bytes` (stored as `dtype`) to f32. */
export function dequantize(dtype: DType, bytes: Uint8Array, count: number): Float32Array<ArrayBuffer> {
  requireBytes(dtype, bytes, count);
  if (isExtraDType(dtype)) return dequantizeExtra(dtype, bytes, count);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
      return out;
    }
    case 'F16':
      return dequantizeF16(bytes, count);
    case 'BF16':
      return dequantizeBf16(bytes, count);
    case 'Q8_0':
      return dequantizeQ8_0(bytes, count);
    case 'Q4_0':
      return dequantizeQ4_0(bytes, count);
    case 'Q4_1':
      return dequantizeQ4_1(bytes, count);
    case 'Q5_0':
      return dequantizeQ5_0(bytes, count);
    case 'Q5_1':
      return dequantizeQ5_1(bytes, count);
    case 'Q4_K':
      return dequantizeQ4_K(bytes, count);
    case 'Q6_K':
      return dequantizeQ6_K(bytes, count);
  }
}

/**
 * Encode f32 values as `dtype`, bit for bit as ggml's reference quantizers (`quantize_row_*_ref`;
 * Q4_K/Q6_K without an importance matrix). Throws for a length that is not a whole number of blocks.
 */
export function quantize(dtype: DType, values: Float32Array, options: LegacyQuantOptions = {}): Uint8Array {
  // APR_Q8/APR_Q4 as aprender's writer (density check on); F64 exactly; other extra types throw.
  if (isExtraDType(dtype)) return quantizeExtra(dtype, values);
  if (values.length % TYPE_INFO[dtype].blockSize !== 0) {
    throw new RangeError(`${dtype}: ${values.length} values is not a whole number of ${TYPE_INFO[dtype].blockSize}-element blocks`);
  }
  switch (dtype) {
    case 'F32':
      return new Uint8Array(Float32Array.from(values).buffer);
    case 'F16':
      return quantizeF16(values);
    case 'BF16':
      return quantizeBf16(values);
    case 'Q8_0':
      return quantizeQ8_0(values);
    case 'Q4_0':
      return quantizeQ4_0(values, options);
    case 'Q4_1':
      return quantizeQ4_1(values, options);
    case 'Q5_0':
      return quantizeQ5_0(values, options);
    case 'Q5_1':
      return quantizeQ5_1(values, options);
    case 'Q4_K':
      return quantizeQ4_K(values);
    case 'Q6_K':
      return quantizeQ6_K(values);
  }
}

/**
 * Σ dequant(row)[i]·x[i] for the `n` elements stored as `dtype` at `bytes[byteOffset]`, accumulated in
 * f64. F32/F16/BF16/Q8_0/Q4_0 read the blocks directly; other types dequantize the row first.
 * `byteOffset` may be unaligned.
 */
export function dotRow(dtype: DType, bytes: Uint8Array, byteOffset: number, x: Float32Array, n: number): number {
  if (TYPE_INFO[dtype].isWholeTensor) {
    throw new RangeError(`dotRow: ${dtype} is encoded over the whole tensor, not per row; dequantize the tensor first`);
  }
  const need = requireBytes(dtype, bytes, n, byteOffset);
  if (x.length < n) throw new RangeError(`dotRow: x has ${x.length} elements, row has ${n}`);
  switch (dtype) {
    case 'F32': {
      const abs = bytes.byteOffset + byteOffset;
      let sum = 0;
      if (abs % 4 === 0) {
        const row = new Float32Array(bytes.buffer, abs, n);
        for (let i = 0; i < n; i++) sum += (row[i] as number) * (x[i] as number);
      } else {
        const dv = new DataView(bytes.buffer, abs, n * 4);
        for (let i = 0; i < n; i++) sum += dv.getFloat32(4 * i, true) * (x[i] as number);
      }
      return sum;
    }
    case 'F16':
      return dotF16(bytes, byteOffset, x, n);
    case 'BF16':
      return dotBf16(bytes, byteOffset, x, n);
    case 'Q8_0':
      return dotQ8_0(bytes, byteOffset, x, n);
    case 'Q4_0':
      return dotQ4_0(bytes, byteOffset, x, n);
    default: {
      const row = dequantize(dtype, bytes.subarray(byteOffset, byteOffset + need), n);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += (row[i] as number) * (x[i] as number);
      return sum;
    }
  }
}
