import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../errors.js';
import { FileByteSource } from '../formats/byte-source.js';
import { dequantize } from '../formats/codecs/index.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import { commonDims, hasQkvBias, headDim, isGpt2, type Checkpoint, type CheckpointTensor, type Gpt2HfConfig, type HfConfig, type LlamaHfConfig } from './types.js';

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

/**
 * Load `config.json` + `model.safetensors` of an HF checkpoint directory into memory as f32
 * (or a given config and weights file, for trained weights committed in models/).
 */
export function loadCheckpoint(dir: string, opts: { config?: HfConfig; weightsFile?: string } = {}): Checkpoint {
  let config: HfConfig;
  try {
    config = opts.config ?? (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfConfig);
  } catch (e) {
    throw new HarnessError('E-CHECKPOINT', `cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`, { cause: e });
  }
  const path = join(dir, opts.weightsFile ?? 'model.safetensors');
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
