/** What the round-trip check needs from a GGUF → HF conversion (src/converters/gguf-to-hf.ts makes it). Imports nothing but contracts. */
import type { DType } from './dtypes.js';

/** What ggufToHfCheckpoint wrote. */
export interface HfCheckpointFromGguf {
  /** The GGUF's general.architecture (one the name map knows). */
  arch: string;
  /** HF tensor name → the GGUF tensor it came from and its stored dtype. */
  tensors: Map<string, { gguf: string; dtype: DType }>;
  /** Non-weight files copied from the source directory. */
  copied: string[];
  /** The GGUF's general.file_type, if it has one. */
  fileType: number | undefined;
}
