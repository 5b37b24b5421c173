/**
 * Where an oracle graph builder reads a checkpoint's tensors from: an in-memory Checkpoint, or the checkpoint's
 * safetensors file read one tensor at a time. The streamed source is what lets a model whose f32 weights are
 * gigabytes build its graph without holding them: each tensor is read, written to the graph's external data file and
 * dropped (src/oracle/onnx-proto.ts), so the build holds one tensor (and its transpose) at a time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, HarnessError } from '../errors.js';
import { openCheckpointWeights } from '../zoo/checkpoint.js';
import type { Checkpoint, CheckpointTensor, HfConfig } from '../zoo/types.js';

/** A checkpoint's config and tensors by HF name; `get` reads the tensor now and keeps no reference to it. */
export interface TensorSource {
  readonly config: HfConfig;
  names(): string[];
  has(name: string): boolean;
  get(name: string): CheckpointTensor | undefined;
  /** Release the file (a no-op in memory). */
  close(): void;
}

/** A TensorSource over a checkpoint already in memory. */
export function memoryTensorSource(ckpt: Checkpoint): TensorSource {
  return {
    config: ckpt.config,
    names: () => [...ckpt.tensors.keys()],
    has: (name) => ckpt.tensors.has(name),
    get: (name) => ckpt.tensors.get(name),
    close: () => undefined,
  };
}

/**
 * A TensorSource over `<dir>/config.json` and `<dir>/model.safetensors`, reading each tensor from the file when it
 * is asked for (converted to f32 by the same codec loadCheckpoint uses, so the values are the same).
 */
export function fileTensorSource(dir: string): TensorSource {
  let config: HfConfig;
  try {
    // an HF checkpoint's config.json, read as loadCheckpoint reads it (zoo/checkpoint.ts): its fields are not validated
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfig;
  } catch (e) {
    throw new HarnessError('E-CHECKPOINT', `cannot read ${join(dir, 'config.json')}: ${errorMessage(e)}`, { cause: e });
  }
  // Single file or shards of model.safetensors.index.json, read by the same codec loadCheckpoint uses (zoo/checkpoint.ts).
  const weights = openCheckpointWeights(dir);
  return {
    config,
    names: () => [...weights.entries.keys()],
    has: (name) => weights.entries.has(name),
    get: (name) => weights.read(name),
    close: () => weights.close(),
  };
}
