import { llamaGgufName } from '../converters/llama-gguf-names.js';
import type { Checkpoint } from '../zoo/types.js';

/** What the converted file must contain, derived from the source checkpoint alone. */
export interface ExpectedTensor {
  /** Name in the artifact's format (GGUF here). */
  name: string;
  hfName: string;
  /** torch order. */
  shape: number[];
  /** Present in some valid files, absent in others (llama.cpp: `output.weight` of a tied model). */
  optional: boolean;
  /** The source values, for data-quality baselines. */
  source: Float32Array;
}

export function expectedGgufTensors(ckpt: Checkpoint): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  for (const [hfName, t] of ckpt.tensors) {
    const name = llamaGgufName(hfName);
    if (name !== undefined) out.push({ name, hfName, shape: t.shape, optional: false, source: t.data });
  }
  const embd = ckpt.tensors.get('model.embed_tokens.weight');
  if (ckpt.config.tie_word_embeddings && embd && !ckpt.tensors.has('lm_head.weight')) {
    out.push({ name: 'output.weight', hfName: 'model.embed_tokens.weight', shape: embd.shape, optional: true, source: embd.data });
  }
  return out;
}
