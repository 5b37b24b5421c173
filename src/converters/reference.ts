import { quantize } from '../formats/codecs/index.js';
import { writeGgufFile, type GgufKv } from '../formats/gguf/writer.js';
import type { DType } from '../formats/types.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import { HfTokenizer, tokenizerTable } from '../zoo/tokenizer.js';
import { headDim, isGpt2, type Checkpoint } from '../zoo/types.js';
import { llamaGgufName, permuteQk } from './llama-gguf-names.js';
import type { Target } from './targets.js';

/** One tensor the converter is about to write. `values` are f32 after layout transforms (permute). */
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
 * The reference converter's quantization policy, as data the layout checks can hold it to:
 * llama.cpp keeps 1-D tensors and `*_norm.weight` in F32 and stores every other 2-D weight in the
 * target's type (convert_hf_to_gguf `--outtype q8_0` quantizes token_embd and output too).
 */
export function referenceDType(name: string, shape: number[], target: Target): DType {
  if (shape.length <= 1 || name.endsWith('_norm.weight') || !name.endsWith('.weight')) return 'F32';
  return target.weightDType;
}

function kv(key: string, type: GgufKv['type'], value: unknown, itemType?: GgufKv['itemType']): GgufKv {
  return (itemType === undefined ? { key, type, value } : { key, type, value, itemType }) as GgufKv;
}

/** Plan a llama-architecture GGUF exactly as llama.cpp's convert_hf_to_gguf.py would write it. */
export function planLlamaGguf(ckpt: Checkpoint, sourceDir: string, target: Target): GgufPlan {
  const c = ckpt.config;
  if (isGpt2(c)) throw new Error('planLlamaGguf: gpt2 checkpoints are not supported by this converter yet');
  const hd = headDim(c);
  const tok = tokenizerTable(HfTokenizer.fromDir(sourceDir).json, c.vocab_size, c.bos_token_id, c.eos_token_id);
  const arch = 'llama';
  const kvs: GgufKv[] = [
    kv('general.architecture', 'string', arch),
    kv('general.name', 'string', sourceDir.split('/').filter(Boolean).pop() ?? 'model'),
    kv('general.file_type', 'u32', target.fileType),
    ...(target.weightDType === 'F32' ? [] : [kv('general.quantization_version', 'u32', 2)]),
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
    kv('tokenizer.ggml.model', 'string', 'gpt2'),
    kv('tokenizer.ggml.pre', 'string', 'default'),
    kv('tokenizer.ggml.tokens', 'array', tok.tokens, 'string'),
    kv('tokenizer.ggml.token_type', 'array', tok.tokenTypes, 'i32'),
    kv('tokenizer.ggml.merges', 'array', tok.merges, 'string'),
    kv('tokenizer.ggml.bos_token_id', 'u32', tok.bosId),
    kv('tokenizer.ggml.eos_token_id', 'u32', tok.eosId),
    kv('tokenizer.ggml.add_bos_token', 'bool', false),
  ];
  const tensors: PlannedTensor[] = [];
  for (const [hfName, t] of ckpt.tensors) {
    const name = llamaGgufName(hfName);
    if (name === undefined) continue;
    let values = t.data;
    const rows = t.shape[0] ?? 1;
    const cols = t.shape[1] ?? 1;
    if (/\.attn_q\.(weight|bias)$/.test(name)) values = permuteQk(values, rows, cols, c.num_attention_heads);
    if (/\.attn_k\.(weight|bias)$/.test(name)) values = permuteQk(values, rows, cols, c.num_key_value_heads);
    tensors.push({ name, shape: t.shape, dtype: referenceDType(name, t.shape, target), values });
  }
  return { kvs, tensors };
}

export function encodePlannedTensor(t: PlannedTensor): Uint8Array {
  return t.data ?? quantize(t.dtype, t.values);
}

/** Convert an HF checkpoint directory to `out`, letting `mutate` (a mutant) alter the plan first. */
export function convertCheckpoint(sourceDir: string, target: Target, out: string, mutate?: (plan: GgufPlan, ckpt: Checkpoint) => void): void {
  const ckpt = loadCheckpoint(sourceDir);
  const plan = planLlamaGguf(ckpt, sourceDir, target);
  mutate?.(plan, ckpt);
  writeGgufFile(out, {
    kvs: plan.kvs,
    tensors: plan.tensors.map((t) => {
      const base = { name: t.name, shape: t.shape, dtype: t.dtype, data: encodePlannedTensor(t) };
      return t.rawType === undefined ? base : { ...base, rawType: t.rawType };
    }),
  });
}
