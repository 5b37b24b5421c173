import { ggufTensorMapping, toGgufLayout } from '../converters/gguf-names.js';
import { commonDims, type Checkpoint } from '../zoo/types.js';

/** What the converted file must contain, derived from the source checkpoint alone. */
export interface ExpectedTensor {
  /** Name in the artifact's format (GGUF here). */
  name: string;
  hfName: string;
  /** torch order, as the file must hold it (a GPT-2 Conv1D weight transposed to [out, in]). */
  shape: number[];
  /** Present in some valid files, absent in others (llama.cpp: `output.weight` of a tied model). */
  optional: boolean;
  /** The source values in the layout the file must hold (llama Q/K permuted, GPT-2 Conv1D transposed). */
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
