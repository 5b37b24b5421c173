import type { DType } from '../contracts/dtypes.js';
import type { FileCode } from '../contracts/verdicts.js';

export { ALL_DTYPES, DTYPES, EXTRA_DTYPES, type DType, type ExtraDType, type GgmlDType } from '../contracts/dtypes.js';
export type { FileCode };

/** A problem a reader found in a file. Readers never throw for malformed input; they return these. */
export interface FileIssue {
  code: FileCode;
  message: string;
  tensor?: string;
  /** true when nothing after this point can be trusted (no tensor table). */
  fatal: boolean;
  evidence?: Record<string, unknown>;
}

/** One tensor as a reader found it. All offsets are absolute file offsets in bytes. */
export interface TensorEntry {
  name: string;
  /** torch order (outermost first); GGUF `ne` reversed. */
  shape: number[];
  dtype: DType;
  /** Raw type id as stored (ggml type id for GGUF), kept for messages about unknown types. */
  rawType: number;
  offset: number;
  /** Bytes that dtype × shape require. */
  byteLength: number;
  /** Bytes the file actually reserves for this tensor (to the next tensor or the end of the data). */
  spanBytes: number;
}

export type MetaValue = string | number | bigint | boolean | MetaValue[];

export interface ModelFile {
  /** 'unknown': readModelFile found no known magic (the issues say so). */
  format: 'gguf' | 'safetensors' | 'apr' | 'unknown';
  metadata: Map<string, MetaValue>;
  tensors: TensorEntry[];
  issues: FileIssue[];
}
