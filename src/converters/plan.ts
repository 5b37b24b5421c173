/**
 * The format-neutral conversion plan: what a converter is about to write, tensor by tensor, plus the
 * format's metadata. The reference converter builds one per target, a mutant may alter it (that is how
 * every mutant injects its bug), and a writer per format turns it into bytes (write-artifact.ts).
 */
import type { GgufKv } from '../formats/gguf/writer.js';
import type { DType } from '../formats/types.js';
import { ggufToHf } from '../formats/name-map.js';
import type { Arch } from '../zoo/types.js';
import type { TargetFormat } from './targets.js';

/** One tensor the converter is about to write. */
export interface PlannedTensor {
  /** The artifact's name (GGUF name, or the HF name in APR and safetensors). */
  name: string;
  /**
   * llama.cpp's (GGUF) name for the tensor's role whatever the format (`blk.0.ffn_down.weight` for
   * `model.layers.0.mlp.down_proj.weight`, `output.weight` for `lm_head.weight`): mutants and tests
   * find tensors by it.
   */
  role: string;
  /** torch order (outermost first), as the file declares it. */
  shape: number[];
  dtype: DType;
  /** f32 values in the file's layout (llama Q/K permuted and GPT-2 Conv1D transposed in GGUF; HF layout otherwise). */
  values: Float32Array;
  /** Bytes to write instead of encoding `values` (mutants use it to write what they like). */
  data?: Uint8Array;
  /** Raw type id to declare instead of dtype's own (ggml id in GGUF, APR dtype code in APR). */
  rawType?: number;
}

interface PlanBase {
  arch: Arch;
  tensors: PlannedTensor[];
}

/** GGUF: key/values in writing order (convert_hf_to_gguf's, with llama-quantize's general.file_type). */
export interface GgufPlan extends PlanBase {
  format: 'gguf';
  kvs: GgufKv[];
}

/** APR v2: the JSON metadata section (`AprV2Metadata`, `custom` flattened into it). */
export interface AprPlan extends PlanBase {
  format: 'apr';
  metadata: Record<string, unknown>;
}

/** safetensors: the `__metadata__` string map. */
export interface SafetensorsPlan extends PlanBase {
  format: 'safetensors';
  metadata: Record<string, string>;
}

export type ConversionPlan = GgufPlan | AprPlan | SafetensorsPlan;

/**
 * A tensor's artifact name for a role in a format: the GGUF name itself, or its HF name (GPT-2 without
 * the `transformer.` prefix, `lm_head.weight` for `output.weight`).
 */
export function artifactName(format: TargetFormat, arch: Arch, role: string): string {
  if (format === 'gguf') return role;
  const hf = ggufToHf(arch, role);
  if (hf === undefined) throw new Error(`no HF name for the ${arch} role '${role}'`);
  return hf.name;
}

/** The planned tensor of a role, if the plan has it. */
export function findRole(plan: ConversionPlan, role: string): PlannedTensor | undefined {
  return plan.tensors.find((t) => t.role === role);
}

/** The planned tensor of a role; throws when the plan has none. */
export function requireRole(plan: ConversionPlan, role: string): PlannedTensor {
  const t = findRole(plan, role);
  if (!t) throw new Error(`plan has no tensor for ${role}`);
  return t;
}
