import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { sha256, sha256File } from '../cache.js';
import { errorMessage, HarnessError } from '../errors.js';
import { isJsonObject } from '../formats/json-depth.js';
import { FileByteSource } from '../formats/byte-source.js';
import { dequantize } from '../formats/codecs/index.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import { f32Bytes, writeSafetensorsFile } from '../formats/safetensors/writer.js';
import type { TensorEntry } from '../formats/types.js';
import { Prng } from './prng.js';
import {
  commonDims,
  hasQkvBias,
  headDim,
  isGpt2,
  type Checkpoint,
  type CheckpointTensor,
  type Gpt2HfConfig,
  type HfConfig,
  type LlamaHfConfig,
} from './types.js';

/** HF tensor names and shapes of a checkpoint of any zoo architecture, in a stable order. */
export function hfTensorShapes(config: HfConfig): Map<string, number[]> {
  return isGpt2(config) ? gpt2TensorShapes(config) : llamaTensorShapes(config);
}

/**
 * GPT-2 (`GPT2LMHeadModel` safetensors names, no `transformer.` prefix). Conv1D weights are stored
 * [in, out]: c_attn [n_embd, 3·n_embd], c_fc [n_embd, n_inner], mlp.c_proj [n_inner, n_embd].
 */
export function gpt2TensorShapes(config: Gpt2HfConfig): Map<string, number[]> {
  const d = commonDims(config);
  const shapes = new Map<string, number[]>();
  shapes.set('wte.weight', [d.vocab, d.hidden]);
  shapes.set('wpe.weight', [d.maxPositions, d.hidden]);
  for (let i = 0; i < d.layers; i++) {
    const p = `h.${i}`;
    shapes.set(`${p}.ln_1.weight`, [d.hidden]);
    shapes.set(`${p}.ln_1.bias`, [d.hidden]);
    shapes.set(`${p}.attn.c_attn.weight`, [d.hidden, 3 * d.hidden]);
    shapes.set(`${p}.attn.c_attn.bias`, [3 * d.hidden]);
    shapes.set(`${p}.attn.c_proj.weight`, [d.hidden, d.hidden]);
    shapes.set(`${p}.attn.c_proj.bias`, [d.hidden]);
    shapes.set(`${p}.ln_2.weight`, [d.hidden]);
    shapes.set(`${p}.ln_2.bias`, [d.hidden]);
    shapes.set(`${p}.mlp.c_fc.weight`, [d.hidden, d.ffn]);
    shapes.set(`${p}.mlp.c_fc.bias`, [d.ffn]);
    shapes.set(`${p}.mlp.c_proj.weight`, [d.ffn, d.hidden]);
    shapes.set(`${p}.mlp.c_proj.bias`, [d.hidden]);
  }
  shapes.set('ln_f.weight', [d.hidden]);
  shapes.set('ln_f.bias', [d.hidden]);
  return shapes;
}

/** HF tensor names of a LLaMA-family checkpoint (llama, qwen2), in a stable order. */
export function llamaTensorShapes(config: LlamaHfConfig): Map<string, number[]> {
  const h = config.hidden_size;
  const hd = headDim(config);
  const q = config.num_attention_heads * hd;
  const kv = config.num_key_value_heads * hd;
  const f = config.intermediate_size;
  const shapes = new Map<string, number[]>();
  shapes.set('model.embed_tokens.weight', [config.vocab_size, h]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [h]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [q, h]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kv, h]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kv, h]);
    if (hasQkvBias(config)) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [q]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [kv]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    // HF LlamaAttention's `attention_bias` also biases o_proj; Qwen2 never does.
    if (config.model_type === 'llama' && config.attention_bias === true) shapes.set(`${p}.self_attn.o_proj.bias`, [h]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [f, h]);
    shapes.set(`${p}.mlp.up_proj.weight`, [f, h]);
    shapes.set(`${p}.mlp.down_proj.weight`, [h, f]);
  }
  shapes.set('model.norm.weight', [h]);
  if (!config.tie_word_embeddings) shapes.set('lm_head.weight', [config.vocab_size, h]);
  return shapes;
}

/** The single-file weights name, and the index the Hub's sharded checkpoints ship instead. */
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Named limits on a sharded checkpoint's index (a user's file: bounded before it is trusted). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024; // Llama-3-70B's index is ~60 kB; 1000× that is not an index
const MAX_SHARDS = 4096; // the largest Hub checkpoints ship a few hundred shards

/** Where a checkpoint's weights are: one file, or the shards an index names (each listed once, in index order). */
export type CheckpointWeights =
  | { kind: 'single'; files: [string] }
  | { kind: 'sharded'; index: string; files: string[]; weightMap: Map<string, string> };

/**
 * Find a checkpoint directory's weights: `model.safetensors` when present (what save_pretrained writes below its
 * shard size), else `model.safetensors.index.json`'s `weight_map` (tensor name → shard file). Shard names must be
 * plain file names in the directory. Throws a HarnessError (E-CHECKPOINT) naming what is wrong.
 */
export function checkpointWeights(dir: string, weightsFile = WEIGHTS_FILE): CheckpointWeights {
  const single = join(dir, weightsFile);
  if (existsSync(single)) return { kind: 'single', files: [single] };
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  if (!existsSync(indexPath))
    throw new HarnessError('E-CHECKPOINT', `cannot open ${single}: no such file, and no ${WEIGHTS_INDEX_FILE} beside it`);
  const size = statSync(indexPath).size;
  if (size > MAX_INDEX_BYTES)
    throw new HarnessError('E-CHECKPOINT', `${indexPath}: ${size} bytes, above the ${MAX_INDEX_BYTES}-byte limit for an index`);
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new HarnessError('E-CHECKPOINT', `${indexPath}: not JSON: ${errorMessage(e)}`, { cause: e });
  }
  const map = isJsonObject(index) ? index['weight_map'] : undefined;
  if (!isJsonObject(map)) throw new HarnessError('E-CHECKPOINT', `${indexPath}: no "weight_map" object`);
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '.' || file === '..') {
      throw new HarnessError(
        'E-CHECKPOINT',
        `${indexPath}: tensor '${name}' maps to ${JSON.stringify(file)}, not a file name in the checkpoint directory`,
      );
    }
    if (!files.includes(file)) {
      if (files.length >= MAX_SHARDS) throw new HarnessError('E-CHECKPOINT', `${indexPath}: more than ${MAX_SHARDS} shards`);
      files.push(file);
    }
    weightMap.set(name, file);
  }
  if (files.length === 0) throw new HarnessError('E-CHECKPOINT', `${indexPath}: "weight_map" is empty`);
  for (const f of files) {
    if (!existsSync(join(dir, f))) throw new HarnessError('E-CHECKPOINT', `${indexPath}: shard ${f} is missing from ${dir}`);
  }
  return { kind: 'sharded', index: indexPath, files: files.map((f) => join(dir, f)), weightMap };
}

/**
 * A digest of the weights for content-addressed caches: a single file's sha256 (so an unsharded checkpoint keys
 * exactly as before), or the sha256 of the index and every shard's sha256.
 */
export function checkpointWeightsSha256(dir: string, weightsFile = WEIGHTS_FILE): string {
  const w = checkpointWeights(dir, weightsFile);
  const files = w.kind === 'single' ? w.files : [w.index, ...w.files];
  // Hashed once per process while no file's size or mtime changes (a 0.5B checkpoint is 2 GB; cells ask per oracle read).
  const stamp = files
    .map((f) => {
      const s = statSync(f);
      return `${f}:${s.size}:${s.mtimeMs}`;
    })
    .join('|');
  const known = weightHashes.get(stamp);
  if (known !== undefined) return known;
  const digest =
    w.kind === 'single'
      ? sha256File(w.files[0])
      : sha256([sha256File(w.index), ...w.files.map((f) => `${basename(f)}:${sha256File(f)}`)].join('\n'));
  weightHashes.set(stamp, digest);
  return digest;
}

const weightHashes = new Map<string, string>();

/** One tensor of a checkpoint's weights, where it lives. */
export interface WeightEntry {
  src: FileByteSource;
  entry: TensorEntry;
}

/** Every tensor of a checkpoint's weights (all shards), each read through the bounds-checked safetensors reader. */
export interface OpenWeights {
  entries: Map<string, WeightEntry>;
  /** f32 values of a tensor (the same codec for every caller: converter, oracle and fidelity read the same values). */
  read(name: string): CheckpointTensor | undefined;
  close(): void;
}

/**
 * Open a checkpoint's weights. Sharded: every shard through `readSafetensors`; a tensor in two shards, a tensor a
 * shard holds that the index does not map to it, or an index entry its shard lacks is an E-CHECKPOINT error.
 */
export function openCheckpointWeights(dir: string, weightsFile = WEIGHTS_FILE): OpenWeights {
  const w = checkpointWeights(dir, weightsFile);
  const sources: FileByteSource[] = [];
  const entries = new Map<string, WeightEntry>();
  const close = (): void => sources.forEach((s) => s.close());
  try {
    for (const path of w.files) {
      let src: FileByteSource;
      try {
        src = new FileByteSource(path);
      } catch (e) {
        throw new HarnessError('E-CHECKPOINT', `cannot open ${path}: ${errorMessage(e)}`, { cause: e });
      }
      sources.push(src);
      const file = readSafetensors(src);
      const fatal = file.issues.find((i) => i.fatal);
      if (fatal) throw new HarnessError('E-CHECKPOINT', `${path}: ${fatal.code} ${fatal.message}`);
      for (const t of file.tensors) {
        const prev = entries.get(t.name);
        if (prev)
          throw new HarnessError('E-CHECKPOINT', `tensor '${t.name}' is in two shards: ${basename(prev.src.path)} and ${basename(path)}`);
        if (w.kind === 'sharded' && w.weightMap.get(t.name) !== basename(path)) {
          const mapped = w.weightMap.get(t.name);
          throw new HarnessError(
            'E-CHECKPOINT',
            `${basename(path)} holds '${t.name}', which ${WEIGHTS_INDEX_FILE} ${mapped === undefined ? 'does not list' : `maps to ${mapped}`}`,
          );
        }
        entries.set(t.name, { src, entry: t });
      }
    }
    if (w.kind === 'sharded') {
      for (const [name, file] of w.weightMap) {
        if (!entries.has(name))
          throw new HarnessError('E-CHECKPOINT', `${WEIGHTS_INDEX_FILE} maps '${name}' to ${file}, which does not hold it`);
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  return {
    entries,
    read(name) {
      const e = entries.get(name);
      if (e === undefined) return undefined;
      const count = e.entry.shape.reduce((a, b) => a * b, 1);
      return { shape: [...e.entry.shape], data: dequantize(e.entry.dtype, e.src.read(e.entry.offset, e.entry.byteLength), count) };
    },
    close,
  };
}

/**
 * Load `config.json` + the weights (`model.safetensors`, or the shards of `model.safetensors.index.json`) of an
 * HF checkpoint directory into memory as f32 (or a given config and weights file, for trained weights committed
 * in models/).
 */
export function loadCheckpoint(dir: string, opts: { config?: HfConfig; weightsFile?: string } = {}): Checkpoint {
  let config: HfConfig;
  try {
    // an HF config.json, taken as HF writes it (its fields are not validated here)
    config = opts.config ?? (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfig);
  } catch (e) {
    throw new HarnessError('E-CHECKPOINT', `cannot read ${join(dir, 'config.json')}: ${errorMessage(e)}`, { cause: e });
  }
  const weights = openCheckpointWeights(dir, opts.weightsFile);
  try {
    const tensors = new Map<string, CheckpointTensor>();
    for (const name of weights.entries.keys()) tensors.set(name, weights.read(name) as CheckpointTensor); // a name from entries: read() finds it
    return { config, tensors };
  } finally {
    weights.close();
  }
}

/** The HF names of the embedding and the untied output matrix, per architecture. */
const VOCAB_ROWS: Record<HfConfig['model_type'], readonly string[]> = {
  llama: ['model.embed_tokens.weight', 'lm_head.weight'],
  qwen2: ['model.embed_tokens.weight', 'lm_head.weight'],
  gpt2: ['wte.weight', 'transformer.wte.weight', 'lm_head.weight'],
};

/**
 * A checkpoint with its vocabulary resized to `vocabSize` (a real tokenizer's), as transformers'
 * `resize_token_embeddings` does: rows below the old size kept; new rows, by default (`mean_resizing`, the
 * default since transformers 4.46), the old rows' mean plus a seeded normal with 1e-5 of their per-column
 * variance, so the new tokens change the model's distributions as little as possible; or (`init: 'normal'`)
 * drawn with the old rows' standard deviation. Deterministic either way. `bos`/`eos` set the config's ids.
 */
export function resizeVocabulary(
  ckpt: Checkpoint,
  vocabSize: number,
  ids: { bos: number; eos: number },
  opts: { seed?: number; init?: 'mean' | 'normal' } = {},
): Checkpoint {
  const rng = new Prng(opts.seed ?? 1234);
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, t] of ckpt.tensors) {
    if (!VOCAB_ROWS[ckpt.config.model_type].includes(name)) {
      tensors.set(name, t);
      continue;
    }
    const [oldRows, cols] = t.shape as [number, number]; // a vocabulary matrix: [vocab, hidden]
    const mean = new Float64Array(cols);
    const sq = new Float64Array(cols);
    for (let r = 0; r < oldRows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = t.data[r * cols + c] as number;
        mean[c] = (mean[c] as number) + v / oldRows;
        sq[c] = (sq[c] as number) + (v * v) / oldRows;
      }
    }
    let allSq = 0;
    for (const v of sq) allSq += v / cols;
    const kept = Math.min(oldRows, vocabSize);
    const data = new Float32Array(vocabSize * cols);
    data.set(t.data.subarray(0, kept * cols));
    for (let r = kept; r < vocabSize; r++) {
      for (let c = 0; c < cols; c++) {
        const m = mean[c] as number;
        const variance = Math.max(0, (sq[c] as number) - m * m);
        data[r * cols + c] = opts.init === 'normal' ? rng.normal() * Math.sqrt(allSq) : m + rng.normal() * Math.sqrt(1e-5 * variance);
      }
    }
    tensors.set(name, { shape: [vocabSize, cols], data });
  }
  // the source config with three fields replaced: the same HfConfig variant
  const config = { ...ckpt.config, vocab_size: vocabSize, bos_token_id: ids.bos, eos_token_id: ids.eos } as HfConfig;
  return { config, tensors };
}

/** Shard file names as save_pretrained spells them: `model-00001-of-00003.safetensors`. */
export function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Write a checkpoint's tensors (f32) as `nShards` safetensors shards plus `model.safetensors.index.json`, the way the
 * Hub ships larger models: tensors in checkpoint order, split into runs of about equal bytes.
 */
export function writeShardedWeights(dir: string, ckpt: Checkpoint, nShards: number): string[] {
  const all = [...ckpt.tensors];
  const total = all.reduce((n, [, t]) => n + t.data.byteLength, 0);
  const shards: [string, CheckpointTensor][][] = Array.from({ length: nShards }, () => []);
  let done = 0;
  for (const entry of all) {
    const i = Math.min(nShards - 1, Math.floor((done * nShards) / total));
    shards[i]?.push(entry);
    done += entry[1].data.byteLength;
  }
  const weightMap: Record<string, string> = {};
  const files = shards.map((tensors, i) => {
    const file = shardName(i, nShards);
    writeSafetensorsFile(
      join(dir, file),
      tensors.map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const, data: f32Bytes(t.data) })),
      { format: 'pt' },
    );
    for (const [name] of tensors) weightMap[name] = file;
    return file;
  });
  writeFileSync(join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  return files;
}

/** The bytes a checkpoint's weights take as f32 (Σ elements × 4 over every tensor of every shard, from the headers). */
export function checkpointF32Bytes(dir: string): number {
  let elements = 0;
  for (const path of checkpointWeights(dir).files) {
    const src = new FileByteSource(path);
    try {
      for (const t of readSafetensors(src).tensors) elements += t.shape.reduce((a, b) => a * b, 1);
    } finally {
      src.close();
    }
  }
  return elements * 4;
}
