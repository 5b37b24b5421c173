import type { ModelFormat } from '../contracts/targets.js';
import { ggufTensorMapping, isIgnoredSourceTensor, toGgufLayout } from '../zoo/gguf-names.js';
import { commonDims, type Checkpoint } from '../zoo/types.js';

/** What the converted file must contain, derived from the source checkpoint alone. */
export interface ExpectedTensor {
  /** Name in the artifact's format (GGUF name in a GGUF, the HF name in APR and safetensors). */
  name: string;
  hfName: string;
  /** torch order, as the file must hold it (a GPT-2 Conv1D weight transposed to [out, in] in GGUF only). */
  shape: number[];
  /** Present in some valid files, absent in others (a tied model's lm_head: `output.weight` / `lm_head.weight`). */
  optional: boolean;
  /** The source values in the layout the file must hold (GGUF: llama Q/K permuted, GPT-2 Conv1D transposed; HF layout otherwise). */
  source: Float32Array;
}

/**
 * The GGUF tensors llama.cpp's converter writes for a checkpoint of any zoo arch (llama, qwen2, gpt2).
 * Source tensors with no GGUF counterpart (mask buffers, rotary caches) expect nothing.
 */
export function expectedGgufTensors(ckpt: Checkpoint): ExpectedTensor[] {
  const arch = ckpt.config.model_type;
  const out: ExpectedTensor[] = [];
  for (const [hfName, t] of ckpt.tensors) {
    const mapping = ggufTensorMapping(arch, hfName);
    if (mapping === undefined) continue;
    const g = toGgufLayout(ckpt.config, mapping, t);
    out.push({ name: g.name, hfName, shape: g.shape, optional: false, source: g.values });
  }
  // A tied model has no `output.weight`; llama.cpp's loaders (llama, qwen2, gpt2) then reuse token_embd,
  // and one written explicitly is a valid copy of it.
  const embd = out.find((e) => e.name === 'token_embd.weight');
  if (commonDims(ckpt.config).tied && embd && !out.some((e) => e.name === 'output.weight')) {
    out.push({ name: 'output.weight', hfName: embd.hfName, shape: [...embd.shape], optional: true, source: embd.source });
  }
  return out;
}

/** HF names of the embedding a tied lm_head copies (aprender's `resolve_f32_tied_embeddings` looks for the same). */
const EMBEDDING_NAMES = ['model.embed_tokens.weight', 'wte.weight', 'transformer.wte.weight'];

/**
 * The tensors of an HF-layout file (APR v2 as aprender writes it, safetensors as save_pretrained does):
 * every parameter of the checkpoint under its own name, shape and layout (GPT-2 Conv1D stays [in, out];
 * mask buffers and rotary caches expect nothing). A tied model's `lm_head.weight` is optional: aprender
 * synthesizes it as a copy of the embedding, save_pretrained leaves it out.
 */
export function expectedHfTensors(ckpt: Checkpoint): ExpectedTensor[] {
  const arch = ckpt.config.model_type;
  const out: ExpectedTensor[] = [];
  for (const [hfName, t] of ckpt.tensors) {
    if (ggufTensorMapping(arch, hfName) === undefined && isIgnoredSourceTensor(arch, hfName)) continue;
    out.push({ name: hfName, hfName, shape: [...t.shape], optional: false, source: t.data });
  }
  const embd = out.find((e) => EMBEDDING_NAMES.includes(e.name));
  if (commonDims(ckpt.config).tied && embd && !out.some((e) => e.name === 'lm_head.weight')) {
    out.push({ name: 'lm_head.weight', hfName: embd.hfName, shape: [...embd.shape], optional: true, source: embd.source });
  }
  return out;
}

/** The manifest for a file of this format. */
export function expectedTensors(ckpt: Checkpoint, format: ModelFormat): ExpectedTensor[] {
  return format === 'gguf' ? expectedGgufTensors(ckpt) : expectedHfTensors(ckpt);
}
