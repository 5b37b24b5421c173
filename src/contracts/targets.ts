/** Targets: every per-target fact in one table, so a new target is a compile error until it is filled in. Imports nothing. */
import type { DType } from './dtypes.js';

/** The model file formats the harness reads and converters write (the one union; readers may also say 'unknown'). */
export const MODEL_FORMATS = ['gguf', 'apr', 'safetensors'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];
/** File formats a target asks for. */
export type TargetFormat = ModelFormat;

/**
 * What produces a target's file in the real world, which the reference converter emulates:
 * - `convert_hf_to_gguf`: llama.cpp's converter with `--outtype` (f32, f16, bf16);
 * - `llama-quantize`: llama.cpp's quantizer (not `--pure`) run on the f32 conversion;
 * - `aprender`: `apr import` (HF checkpoint → APR v2, `--quantize` int8/int4/fp16 or none);
 * - `save_pretrained`: `model.half()` / `model.to(torch.bfloat16)` then transformers' `save_pretrained`.
 */
export type TargetProducer = 'convert_hf_to_gguf' | 'llama-quantize' | 'aprender' | 'save_pretrained';

/** Every target id, `<format>/<type>`. */
export const TARGET_IDS = [
  'gguf/f32',
  'gguf/f16',
  'gguf/bf16',
  'gguf/q8_0',
  'gguf/q4_0',
  'gguf/q4_1',
  'gguf/q5_0',
  'gguf/q5_1',
  'gguf/q4_k',
  'gguf/q6_k',
  'apr/f32',
  'apr/f16',
  'apr/int8',
  'apr/int4',
  'safetensors/f16',
  'safetensors/bf16',
] as const;

export type TargetId = (typeof TARGET_IDS)[number];

/** One target: what a cell asks a converter for. */
export interface TargetSpec {
  format: TargetFormat;
  /** The type half of the id (`q8_0`, `int4`, …), also the name `tmgt convert` and artifact paths use. */
  type: string;
  /**
   * The storage type of the target's quantized 2-D weights before any per-tensor rule (llama-quantize's
   * output/embedding rule, K-quant fallbacks, aprender's skip list): the ftype's default type.
   */
  weightDType: DType;
  /** GGUF `general.file_type` (`llama_ftype`, formats.md §1.2); undefined for APR and safetensors. */
  fileType: number | undefined;
  producer: TargetProducer;
  /**
   * How many bits the weights keep, as a rank: lower = more precise (drift ordering, F-TOKENS-003). Targets of one rank
   * are not ordered against each other (f16 vs bf16: more mantissa vs more range; q4_0 vs q4_k).
   */
  precisionRank: number;
  /** Whether A → HF → A must reproduce the artifact (lossless or half-precision GGUF; block quants do not round-trip by design). */
  roundtrip: boolean;
  /** Whether llama.cpp can run the artifact (GGUF only): the cross-runtime suite applies. */
  crossRuntime: boolean;
}

export type Target = TargetSpec & { id: TargetId };

const gguf = (type: string, weightDType: DType, fileType: number, producer: TargetProducer, precisionRank: number): TargetSpec => ({
  format: 'gguf',
  type,
  weightDType,
  fileType,
  producer,
  precisionRank,
  roundtrip: producer === 'convert_hf_to_gguf',
  crossRuntime: true,
});
const other = (format: 'apr' | 'safetensors', type: string, weightDType: DType, precisionRank: number): TargetSpec => ({
  format,
  type,
  weightDType,
  fileType: undefined,
  producer: format === 'apr' ? 'aprender' : 'save_pretrained',
  precisionRank,
  roundtrip: false,
  crossRuntime: false,
});

/**
 * The targets. `fileType` is llama.cpp's `llama_ftype` as `general.file_type` records it: ALL_F32 0,
 * MOSTLY_F16 1, Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q4_K_M 15, Q6_K 18, BF16 32. `gguf/q4_k` is
 * llama-quantize's `Q4_K`, an alias of Q4_K_M (tools/quantize/quantize.cpp QUANT_OPTIONS). Precision ranks: f32 0; f16, bf16 1;
 * 8-bit 2; q6_k 3; 5-bit 4; 4-bit 5.
 */
export const TARGETS: Record<TargetId, TargetSpec> = {
  'gguf/f32': gguf('f32', 'F32', 0, 'convert_hf_to_gguf', 0),
  'gguf/f16': gguf('f16', 'F16', 1, 'convert_hf_to_gguf', 1),
  'gguf/bf16': gguf('bf16', 'BF16', 32, 'convert_hf_to_gguf', 1),
  'gguf/q8_0': gguf('q8_0', 'Q8_0', 7, 'llama-quantize', 2),
  'gguf/q4_0': gguf('q4_0', 'Q4_0', 2, 'llama-quantize', 5),
  'gguf/q4_1': gguf('q4_1', 'Q4_1', 3, 'llama-quantize', 5),
  'gguf/q5_0': gguf('q5_0', 'Q5_0', 8, 'llama-quantize', 4),
  'gguf/q5_1': gguf('q5_1', 'Q5_1', 9, 'llama-quantize', 4),
  'gguf/q4_k': gguf('q4_k', 'Q4_K', 15, 'llama-quantize', 5),
  'gguf/q6_k': gguf('q6_k', 'Q6_K', 18, 'llama-quantize', 3),
  'apr/f32': other('apr', 'f32', 'F32', 0),
  'apr/f16': other('apr', 'f16', 'F16', 1),
  'apr/int8': other('apr', 'int8', 'APR_Q8', 2),
  'apr/int4': other('apr', 'int4', 'APR_Q4', 5),
  'safetensors/f16': other('safetensors', 'f16', 'F16', 1),
  'safetensors/bf16': other('safetensors', 'bf16', 'BF16', 1),
};
