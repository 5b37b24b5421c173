/** Storage types the readers know. Names follow ggml / safetensors spelling. */
export const DTYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q6_K'] as const;
export type DType = (typeof DTYPES)[number];

/** File-level verdict codes a reader can raise (the catalogue in src/checks/codes.ts includes them). */
export type FileCode = 'F-FILE-001' | 'F-FILE-002' | 'F-FILE-003' | 'F-FILE-004';

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
  format: 'gguf' | 'safetensors';
  metadata: Map<string, MetaValue>;
  tensors: TensorEntry[];
  issues: FileIssue[];
}
