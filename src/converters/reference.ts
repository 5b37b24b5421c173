/**
 * The reference converter: an HF checkpoint to every target, the way the real tool for that target
 * writes it (targets.ts `producer`):
 *
 * - GGUF f32/f16/bf16 as llama.cpp's convert_hf_to_gguf.py (names, llama Q/K permute, GPT-2 Conv1D
 *   transposes, metadata and tokenizer keys), and the quantized GGUF targets as llama-quantize (not
 *   `--pure`) on that f32 conversion: its per-tensor type choice, K-quant fallbacks, general.file_type
 *   and tensor order (quant-rules.ts lists every rule).
 * - APR v2 as aprender's `apr import`: HF names and torch shapes (GPT-2 Conv1D stays [in, out]),
 *   `AprV2Metadata` JSON with rope_type NEOX for the HF-layout llama/qwen2, its skip list for int8/int4,
 *   and — like `resolve_f32_tied_embeddings` — a tied model's `lm_head.weight` synthesized as a copy of
 *   the embedding (with `tied_embeddings: true`), quantized like any other weight.
 * - safetensors f16/bf16 as `model.half()` / `.to(torch.bfloat16)` + `save_pretrained`: HF names and
 *   layout, every tensor in that dtype, a tied `lm_head.weight` not written.
 *
 * `convertCheckpoint` plans, lets a mutant alter the plan, then writes it.
 */
import type { GgufKv } from '../formats/gguf/writer.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import { commonDims, headDim, isGpt2, type Checkpoint, type CheckpointTensor, type HfConfig } from '../zoo/types.js';
import { ggufTensorMapping, isIgnoredSourceTensor, toGgufLayout, type GgufTensorMapping } from '../zoo/gguf-names.js';
import { artifactName, type AprPlan, type ConversionPlan, type GgufPlan, type PlannedTensor, type SafetensorsPlan } from './plan.js';
import { aprType, convertType, llamaCppTensorOrder, llamaQuantizeTypes } from './quant-rules.js';
import type { Target } from './targets.js';
import { aprTokenizerMetadata, cachedTokenizerExport, ggufTokenizerKvs, type TokenizerExport } from './tokenizer-export.js';
import { writeArtifact } from './write-artifact.js';

export { referencePolicy } from './quant-rules.js';
export { encodePlannedTensor } from './write-artifact.js';
export type { ConversionPlan, GgufPlan, AprPlan, SafetensorsPlan, PlannedTensor } from './plan.js';

function kv(key: string, type: GgufKv['type'], value: unknown, itemType?: GgufKv['itemType']): GgufKv {
  // value: what the reader gave for this key (or a number/string of the same type), which the writer checks against type
  return (itemType === undefined ? { key, type, value } : { key, type, value, itemType }) as GgufKv;
}

/** GGML_QNT_VERSION: convert_hf_to_gguf (`prepare_metadata`) and llama-quantize both always write it. */
const GGML_QUANT_VERSION = 2;

/** Hyperparameter keys, per arch, as convert_hf_to_gguf.py's `set_gguf_parameters` writes them (formats.md §1.7). */
function hparamKvs(c: HfConfig): GgufKv[] {
  if (isGpt2(c)) {
    // GPT2Model.set_gguf_parameters: n_ctx, n_embd, ff, n_head, layer_norm_epsilon; no vocab_size, no head_count_kv.
    const d = commonDims(c);
    return [
      kv('gpt2.context_length', 'u32', d.maxPositions),
      kv('gpt2.embedding_length', 'u32', d.hidden),
      kv('gpt2.feed_forward_length', 'u32', d.ffn),
      kv('gpt2.block_count', 'u32', d.layers),
      kv('gpt2.attention.head_count', 'u32', d.heads),
      kv('gpt2.attention.layer_norm_epsilon', 'f32', c.layer_norm_epsilon),
    ];
  }
  const arch = c.model_type;
  const hd = headDim(c);
  return [
    kv(`${arch}.vocab_size`, 'u32', c.vocab_size),
    kv(`${arch}.context_length`, 'u32', c.max_position_embeddings),
    kv(`${arch}.embedding_length`, 'u32', c.hidden_size),
    kv(`${arch}.block_count`, 'u32', c.num_hidden_layers),
    kv(`${arch}.feed_forward_length`, 'u32', c.intermediate_size),
    kv(`${arch}.attention.head_count`, 'u32', c.num_attention_heads),
    kv(`${arch}.attention.head_count_kv`, 'u32', c.num_key_value_heads),
    kv(`${arch}.attention.key_length`, 'u32', hd),
    kv(`${arch}.attention.value_length`, 'u32', hd),
    kv(`${arch}.attention.layer_norm_rms_epsilon`, 'f32', c.rms_norm_eps),
    kv(`${arch}.rope.freq_base`, 'f32', c.rope_theta),
    kv(`${arch}.rope.dimension_count`, 'u32', hd),
  ];
}

/** The checkpoint's tokenizer as the converter exports it (tokenizer-export.ts). */
function tokenizerOf(ckpt: Checkpoint, sourceDir: string): TokenizerExport {
  return cachedTokenizerExport(sourceDir, ckpt.config.model_type, commonDims(ckpt.config).vocab);
}

const modelName = (sourceDir: string): string => sourceDir.split('/').filter(Boolean).pop() ?? 'model';

/** The checkpoint's tensors the converters write: mask buffers and rotary caches dropped; an unmappable tensor is fatal. */
function* sourceTensors(ckpt: Checkpoint): Generator<{ hfName: string; role: string; mapping: GgufTensorMapping; t: CheckpointTensor }> {
  const arch = ckpt.config.model_type;
  for (const [hfName, t] of ckpt.tensors) {
    const mapping = ggufTensorMapping(arch, hfName);
    if (mapping === undefined) {
      if (isIgnoredSourceTensor(arch, hfName)) continue;
      // convert_hf_to_gguf.py: "Can not map tensor" is fatal, not a silent drop.
      throw new Error(`cannot map tensor '${hfName}' of a ${arch} checkpoint to a GGUF name`);
    }
    yield { hfName, role: mapping.name, mapping, t };
  }
}

/**
 * Plan a GGUF as llama.cpp writes it, for any zoo architecture: llama (Q/K permuted for NORM RoPE), qwen2
 * (no permute, q/k/v biases, NEOX RoPE at run time) and gpt2 (Conv1D weights transposed to [out, in],
 * mask buffers dropped, learned positions kept in F32). f32/f16/bf16 are convert_hf_to_gguf `--outtype`;
 * the quantized targets are llama-quantize on the f32 conversion (types, general.file_type, and its
 * tensor order: llama.cpp's loader sorts tensors by layer, then name).
 */
export function planGguf(ckpt: Checkpoint, sourceDir: string, target: Target): GgufPlan {
  if (target.format !== 'gguf' || target.fileType === undefined) throw new Error(`planGguf: ${target.id} is not a GGUF target`);
  const c = ckpt.config;
  const arch = c.model_type;
  const tok = tokenizerOf(ckpt, sourceDir);
  const kvs: GgufKv[] = [
    kv('general.architecture', 'string', arch),
    kv('general.name', 'string', modelName(sourceDir)),
    kv('general.file_type', 'u32', target.fileType),
    kv('general.quantization_version', 'u32', GGML_QUANT_VERSION),
    ...hparamKvs(c),
    ...ggufTokenizerKvs(tok),
  ];
  const isQuantize = target.producer === 'llama-quantize';
  // convert_hf_to_gguf's out type; llama-quantize starts from the f32 conversion.
  const outType = isQuantize ? 'F32' : target.weightDType;
  let tensors: PlannedTensor[] = [];
  for (const { mapping, t } of sourceTensors(ckpt)) {
    const g = toGgufLayout(c, mapping, t);
    tensors.push({ name: g.name, role: g.name, shape: g.shape, dtype: convertType(g.name, g.shape, outType), values: g.values });
  }
  if (isQuantize) {
    const types = llamaQuantizeTypes(
      tensors.map((t) => ({ name: t.name, shape: t.shape, current: t.dtype })),
      target.fileType,
      commonDims(c).layers,
    );
    tensors = tensors.map((t) => ({ ...t, dtype: types.get(t.name) ?? t.dtype })).sort((a, b) => llamaCppTensorOrder(a.name, b.name));
  }
  return { format: 'gguf', arch, kvs, tensors };
}

/** `AprV2Metadata.quantization` (`QuantizationMetadata`) for aprender's quantized outputs. */
const APR_QUANTIZATION: Partial<Record<string, { quant_type: string; bits: number; block_size: number | null; symmetric: boolean }>> = {
  int8: { quant_type: 'int8', bits: 8, block_size: null, symmetric: true },
  int4: { quant_type: 'int4', bits: 4, block_size: 32, symmetric: true },
  f16: { quant_type: 'fp16', bits: 16, block_size: null, symmetric: true },
};

/** rope_type codes of `AprV2Metadata` (realizar): 0 = NORM (adjacent pairs), 2 = NEOX (split halves). */
const APR_ROPE_NEOX = 2;

/** `AprV2Metadata` transformer config fields from config.json, as aprender's `GgufModelConfig` carries them. */
function aprConfigFields(c: HfConfig): Record<string, unknown> {
  const d = commonDims(c);
  const common = {
    architecture: c.model_type,
    hidden_size: d.hidden,
    num_layers: d.layers,
    num_heads: d.heads,
    num_kv_heads: d.kvHeads,
    vocab_size: d.vocab,
    intermediate_size: d.ffn,
    max_position_embeddings: d.maxPositions,
  };
  if (isGpt2(c)) {
    // Learned positions: no rope fields. `rms_norm_eps` is aprender's one "layer norm epsilon" field.
    return { ...common, rms_norm_eps: c.layer_norm_epsilon, head_dim: d.headDim };
  }
  // HF layout (no Q/K permute) needs NEOX rotation for llama as for qwen2 (formats.md §1.8).
  return { ...common, rope_theta: c.rope_theta, rope_type: APR_ROPE_NEOX, rms_norm_eps: c.rms_norm_eps, head_dim: d.headDim };
}

/** HF names of the embedding, where `resolve_f32_tied_embeddings` looks for it. */
const EMBEDDING_ROLE = 'token_embd.weight';
const LM_HEAD_ROLE = 'output.weight';

/**
 * Plan an APR v2 file as aprender's `apr import` writes it from an HF checkpoint (see the module
 * comment). Tensors keep HF names, shapes and layout; the writer sorts them by name.
 */
export function planApr(ckpt: Checkpoint, sourceDir: string, target: Target): AprPlan {
  if (target.format !== 'apr') throw new Error(`planApr: ${target.id} is not an APR target`);
  const c = ckpt.config;
  const arch = c.model_type;
  const raw = [...sourceTensors(ckpt)].map(({ hfName, role, t }) => ({ name: hfName, role, shape: [...t.shape], values: t.data }));
  // resolve_f32_tied_embeddings: no lm_head.weight → a copy of the embedding, flagged tied_embeddings.
  const isTied = !raw.some((t) => t.role === LM_HEAD_ROLE);
  const embd = raw.find((t) => t.role === EMBEDDING_ROLE);
  if (isTied && embd)
    raw.push({ name: artifactName('apr', arch, LM_HEAD_ROLE), role: LM_HEAD_ROLE, shape: [...embd.shape], values: embd.values });
  const tensors: PlannedTensor[] = raw.map((t) => ({ ...t, dtype: aprType(t.name, t.shape, target) }));

  const custom: Record<string, unknown> = {
    tensor_shapes: Object.fromEntries([...tensors].sort((a, b) => (a.name < b.name ? -1 : 1)).map((t) => [t.name, t.shape])),
    ...(isTied ? { tied_embeddings: true } : {}),
    ...aprTokenizerMetadata(tokenizerOf(ckpt, sourceDir)),
  };
  const quantization = APR_QUANTIZATION[target.type];
  const metadata: Record<string, unknown> = {
    model_type: arch,
    name: modelName(sourceDir),
    total_size: 0,
    param_count: tensors.reduce((n, t) => n + t.values.length, 0),
    ...(quantization ? { quantization } : {}),
    ...aprConfigFields(c),
    ...custom,
  };
  return { format: 'apr', arch, tensors, metadata };
}

/**
 * Plan a safetensors file as `model.half()` (or `.to(torch.bfloat16)`) + `save_pretrained` writes it:
 * HF names and layout, every tensor in the target dtype, `{"format": "pt"}` metadata. save_pretrained
 * drops a tied `lm_head.weight` (shared with the embedding), so a tied model has none.
 */
export function planSafetensors(ckpt: Checkpoint, target: Target): SafetensorsPlan {
  if (target.format !== 'safetensors') throw new Error(`planSafetensors: ${target.id} is not a safetensors target`);
  const tensors: PlannedTensor[] = [...sourceTensors(ckpt)].map(({ hfName, role, t }) => ({
    name: hfName,
    role,
    shape: [...t.shape],
    dtype: target.weightDType,
    values: t.data,
  }));
  return { format: 'safetensors', arch: ckpt.config.model_type, tensors, metadata: { format: 'pt' } };
}

/** Plan the reference conversion of a checkpoint to any target. */
export function planConversion(ckpt: Checkpoint, sourceDir: string, target: Target): ConversionPlan {
  switch (target.format) {
    case 'gguf':
      return planGguf(ckpt, sourceDir, target);
    case 'apr':
      return planApr(ckpt, sourceDir, target);
    case 'safetensors':
      return planSafetensors(ckpt, target);
  }
}

/**
 * The storage type the reference gives each tensor of a checkpoint at a target, by artifact name
 * (what the per-target dtype tests and the policy are held against).
 */
export function referenceTypes(ckpt: Checkpoint, sourceDir: string, target: Target): Map<string, PlannedTensor['dtype']> {
  return new Map(planConversion(ckpt, sourceDir, target).tensors.map((t) => [t.name, t.dtype]));
}

/** Convert an HF checkpoint directory to `out`, letting `mutate` (a mutant) alter the plan first. */
export function convertCheckpoint(
  sourceDir: string,
  target: Target,
  out: string,
  mutate?: (plan: ConversionPlan, ckpt: Checkpoint) => void,
): void {
  const ckpt = loadCheckpoint(sourceDir);
  const plan = planConversion(ckpt, sourceDir, target);
  mutate?.(plan, ckpt);
  writeArtifact(plan, out);
}
