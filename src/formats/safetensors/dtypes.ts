/**
 * safetensors dtypes (`safetensors/src/tensor.rs` `Dtype`, formats.md §3). The order is the Rust enum's:
 * "increasing alignment", which the writer sorts by (descending) before the name.
 */
import type { DType } from '../types.js';

export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const satisfies readonly DType[];
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** `Dtype::bitsize`. */
export const SAFETENSORS_BITS: Record<SafetensorsDType, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const RANK: ReadonlyMap<string, number> = new Map(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

/** The dtype's position in the Rust enum, or undefined for a string safetensors does not know. */
export function safetensorsDTypeRank(dtype: SafetensorsDType): number;
export function safetensorsDTypeRank(dtype: string): number | undefined;
export function safetensorsDTypeRank(dtype: string): number | undefined {
  return RANK.get(dtype);
}

export function isSafetensorsDType(dtype: string): dtype is SafetensorsDType {
  return RANK.has(dtype);
}

/**
 * Bytes that `shape` of `dtype` takes (`Metadata::validate`), in bigint: the element count × bitsize
 * must be a whole number of bytes. Returns a reason instead when it is not, or when it overflows usize.
 */
export function safetensorsByteLength(dtype: SafetensorsDType, shape: readonly bigint[]): bigint | { reason: string } {
  const USIZE_MAX = (1n << 64n) - 1n;
  let n = 1n;
  for (const d of shape) {
    n *= d;
    if (n > USIZE_MAX) return { reason: `element count of [${shape.join(', ')}] overflows usize (ValidationOverflow)` };
  }
  const bits = n * BigInt(SAFETENSORS_BITS[dtype]);
  if (bits / 8n > USIZE_MAX) return { reason: `byte size of [${shape.join(', ')}] ${dtype} overflows usize (ValidationOverflow)` };
  if (bits % 8n !== 0n) return { reason: `${n} ${dtype} elements are ${bits} bits, not a whole number of bytes` };
  return bits / 8n;
}
