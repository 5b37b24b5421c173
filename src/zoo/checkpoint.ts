import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../errors.js';
import { FileByteSource } from '../formats/byte-source.js';
import { dequantize } from '../formats/codecs/index.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import type { Checkpoint, CheckpointTensor, HfConfig } from './types.js';

/** HF tensor names of a LLaMA-family checkpoint, in a stable order (the expected-tensor manifest builds on it). */
export function llamaTensorShapes(config: HfConfig): Map<string, number[]> {
  const h = config.hidden_size;
  const hd = config.head_dim ?? h / config.num_attention_heads;
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
    if (config.attention_bias) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [q]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [kv]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [h]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [f, h]);
    shapes.set(`${p}.mlp.up_proj.weight`, [f, h]);
    shapes.set(`${p}.mlp.down_proj.weight`, [h, f]);
  }
  shapes.set('model.norm.weight', [h]);
  if (!config.tie_word_embeddings) shapes.set('lm_head.weight', [config.vocab_size, h]);
  return shapes;
}

/** Load `config.json` + `model.safetensors` of an HF checkpoint directory into memory as f32. */
export function loadCheckpoint(dir: string): Checkpoint {
  let config: HfConfig;
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfig;
  } catch (e) {
    throw new HarnessError('E-CHECKPOINT', `cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`, { cause: e });
  }
  const path = join(dir, 'model.safetensors');
  let src: FileByteSource;
  try {
    src = new FileByteSource(path);
  } catch (e) {
    throw new HarnessError('E-CHECKPOINT', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const file = readSafetensors(src);
    const fatal = file.issues.find((i) => i.fatal);
    if (fatal) throw new HarnessError('E-CHECKPOINT', `${path}: ${fatal.code} ${fatal.message}`);
    const tensors = new Map<string, CheckpointTensor>();
    for (const t of file.tensors) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      tensors.set(t.name, { shape: t.shape, data: dequantize(t.dtype, src.read(t.offset, t.byteLength), count) });
    }
    return { config, tensors };
  } finally {
    src.close();
  }
}
