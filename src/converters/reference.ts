import { quantize, TYPE_INFO } from '../formats/codecs/index.js';
import { writeGgufFile, type GgufKv } from '../formats/gguf/writer.js';
import type { DType } from '../formats/types.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import { HfTokenizer, tokenizerTable } from '../zoo/tokenizer.js';
import { commonDims, headDim, isGpt2, type Arch, type Checkpoint, type HfConfig } from '../zoo/types.js';
import { ggufTensorMapping, isIgnoredSourceTensor, toGgufLayout } from './gguf-names.js';
import type { Target } from './targets.js';

/** One tensor the converter is about to write. `values` are f32 after layout transforms (permute, transpose). */
export interface PlannedTensor {
  name: string;
  shape: number[];
  dtype: DType;
  values: Float32Array;
  /** Bytes to write instead of encoding `values` (mutants use it to write what they like). */
  data?: Uint8Array;
  /** ggml type id to declare instead of dtype's own. */
  rawType?: number;
}

export interface GgufPlan {
  kvs: GgufKv[];
  tensors: PlannedTensor[];
}

/**
 * The reference converter's quantization policy, as data the layout checks can hold it to. llama.cpp
 * (convert_hf_to_gguf `prepare_tensors`) keeps 1-D tensors, `*_norm.weight`, anything not named
 * `*.weight` (biases) and `position_embd` in F32, and stores every other 2-D weight in the target's type
 * (`--outtype q8_0` quantizes token_embd and output too). A row that does not divide into the type's
 * blocks falls back to F16, as the converter does on `QuantError`.
 */
export function referenceDType(name: string, shape: number[], target: Target): DType {
  if (shape.length <= 1 || name.endsWith('_norm.weight') || !name.endsWith('.weight') || name.startsWith('position_embd.')) return 'F32';
  const rowLength = shape[shape.length - 1] ?? 0;
  if (rowLength % TYPE_INFO[target.weightDType].blockSize !== 0) return 'F16';
  return target.weightDType;
}

function kv(key: string, type: GgufKv['type'], value: unknown, itemType?: GgufKv['itemType']): GgufKv {
  return (itemType === undefined ? { key, type, value } : { key, type, value, itemType }) as GgufKv;
}

/** `tokenizer.ggml.pre` per arch: the pre-tokenizer llama.cpp's converter detects for these tokenizers. */
const TOKENIZER_PRE: Record<Arch, string> = { llama: 'default', qwen2: 'qwen2', gpt2: 'gpt-2' };

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

/**
 * Plan a GGUF exactly as llama.cpp's convert_hf_to_gguf.py would write it, for any zoo architecture:
 * llama (Q/K permuted for NORM RoPE), qwen2 (no permute, q/k/v biases, NEOX RoPE at run time) and gpt2
 * (Conv1D weights transposed to [out, in], mask buffers dropped, learned positions kept in F32).
 */
export function planGguf(ckpt: Checkpoint, sourceDir: string, target: Target): GgufPlan {
  const c = ckpt.config;
  const arch = c.model_type;
  const tok = tokenizerTable(HfTokenizer.fromDir(sourceDir).json, c.vocab_size, c.bos_token_id, c.eos_token_id);
  const kvs: GgufKv[] = [
    kv('general.architecture', 'string', arch),
    kv('general.name', 'string', sourceDir.split('/').filter(Boolean).pop() ?? 'model'),
    kv('general.file_type', 'u32', target.fileType),
    ...(target.weightDType === 'F32' ? [] : [kv('general.quantization_version', 'u32', 2)]),
    ...hparamKvs(c),
    kv('tokenizer.ggml.model', 'string', 'gpt2'),
    kv('tokenizer.ggml.pre', 'string', TOKENIZER_PRE[arch]),
    kv('tokenizer.ggml.tokens', 'array', tok.tokens, 'string'),
    kv('tokenizer.ggml.token_type', 'array', tok.tokenTypes, 'i32'),
    kv('tokenizer.ggml.merges', 'array', tok.merges, 'string'),
    kv('tokenizer.ggml.bos_token_id', 'u32', tok.bosId),
    kv('tokenizer.ggml.eos_token_id', 'u32', tok.eosId),
    kv('tokenizer.ggml.add_bos_token', 'bool', false),
  ];
  const tensors: PlannedTensor[] = [];
  for (const [hfName, t] of ckpt.tensors) {
    const mapping = ggufTensorMapping(arch, hfName);
    if (mapping === undefined) {
      if (isIgnoredSourceTensor(arch, hfName)) continue;
      // convert_hf_to_gguf.py: "Can not map tensor" is fatal, not a silent drop.
      throw new Error(`cannot map tensor '${hfName}' of a ${arch} checkpoint to a GGUF name`);
    }
    const g = toGgufLayout(c, mapping, t);
    tensors.push({ name: g.name, shape: g.shape, dtype: referenceDType(g.name, g.shape, target), values: g.values });
  }
  return { kvs, tensors };
}

/** @deprecated the planner handles every zoo arch now; use {@link planGguf}. */
export const planLlamaGguf = planGguf;

export function encodePlannedTensor(t: PlannedTensor): Uint8Array {
  return t.data ?? quantize(t.dtype, t.values);
}

/** Convert an HF checkpoint directory to `out`, letting `mutate` (a mutant) alter the plan first. */
export function convertCheckpoint(sourceDir: string, target: Target, out: string, mutate?: (plan: GgufPlan, ckpt: Checkpoint) => void): void {
  const ckpt = loadCheckpoint(sourceDir);
  const plan = planGguf(ckpt, sourceDir, target);
  mutate?.(plan, ckpt);
  writeGgufFile(out, {
    kvs: plan.kvs,
    tensors: plan.tensors.map((t) => {
      const base = { name: t.name, shape: t.shape, dtype: t.dtype, data: encodePlannedTensor(t) };
      return t.rawType === undefined ? base : { ...base, rawType: t.rawType };
    }),
  });
}
