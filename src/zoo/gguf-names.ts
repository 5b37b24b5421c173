/**
 * HF → GGUF tensor names and layouts for the zoo's architectures, as llama.cpp's convert_hf_to_gguf.py
 * writes them (gguf-py `tensor_mapping.py`, formats.md §1.6). Shared by the reference converter (what to
 * write) and the expected-tensor manifest (what a file must hold).
 */
import { hfToGguf, permuteQk, transpose, type LayoutTransform, type NameMapping } from '../formats/name-map.js';
import { isGpt2, type Arch, type CheckpointTensor, type HfConfig } from './types.js';

export { permuteQk, transpose };

/**
 * How a source tensor's values are rearranged on the way into the file: llama's Q/K permute, or the
 * transpose of a GPT-2 Conv1D weight from [in, out] to torch-Linear [out, in].
 */
export type GgufTransform = LayoutTransform;
export type GgufTensorMapping = NameMapping;

/**
 * Source tensors llama.cpp's converter drops on purpose because they are buffers, not parameters:
 * GPT-2's causal-mask buffers `*.attn.bias` / `*.attn.masked_bias` and old rotary `inv_freq` caches.
 */
export function isIgnoredSourceTensor(arch: Arch, hfName: string): boolean {
  if (arch === 'gpt2') return hfName.endsWith('.attn.bias') || hfName.endsWith('.attn.masked_bias');
  return hfName.endsWith('.rotary_emb.inv_freq');
}

/** The GGUF name and layout transform of an HF tensor, or undefined when llama.cpp has no mapping for it. */
export function ggufTensorMapping(arch: Arch, hfName: string): GgufTensorMapping | undefined {
  return hfToGguf(arch, hfName);
}

export function ggufTensorName(arch: Arch, hfName: string): string | undefined {
  return ggufTensorMapping(arch, hfName)?.name;
}

/** A source tensor as the GGUF file must hold it: GGUF name, torch-order shape, values in file layout. */
export interface GgufLayoutTensor {
  name: string;
  shape: number[];
  values: Float32Array;
  transform: GgufTransform;
}

/** Apply the mapping's transform to a source tensor (a copy when the layout changes, the source otherwise). */
export function toGgufLayout(config: HfConfig, mapping: GgufTensorMapping, t: CheckpointTensor): GgufLayoutTensor {
  const rows = t.shape[0] ?? 1;
  const cols = t.shape.length >= 2 ? (t.shape[1] as number) : 1;
  const base = { name: mapping.name, transform: mapping.transform };
  switch (mapping.transform) {
    case 'none':
      return { ...base, shape: [...t.shape], values: t.data };
    case 'transpose':
      if (t.shape.length !== 2) throw new Error(`cannot transpose ${mapping.name}: shape [${t.shape.join(', ')}] is not 2-D`);
      return { ...base, shape: [cols, rows], values: transpose(t.data, rows, cols) };
    case 'permute-q':
    case 'permute-k': {
      if (isGpt2(config)) throw new Error(`${mapping.name}: gpt2 has no Q/K permute`);
      // LlamaModel.permute(k, n_head, n_head_kv): with n_head_kv given, heads = n_head_kv.
      const heads = mapping.transform === 'permute-q' ? config.num_attention_heads : config.num_key_value_heads;
      return { ...base, shape: [...t.shape], values: permuteQk(t.data, rows, cols, heads) };
    }
  }
}
