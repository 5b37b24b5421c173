/**
 * GGUF ↔ Hugging Face tensor names and layouts for the llama, qwen2 and gpt2 architectures, in both
 * directions (gguf-py `tensor_mapping.py`, conversion/llama.py, conversion/gpt2.py; formats.md §1.6),
 * so tensors of an HF checkpoint and of its GGUF conversion can be compared element by element.
 *
 * This lives in the format layer (the diff tool needs it without the zoo or the converters); the
 * reference converter (src/zoo/gguf-names.ts) writes with the same map.
 */

/** Architectures whose names and layouts are mapped. */
export const MAPPED_ARCHS = ['llama', 'qwen2', 'gpt2'] as const;
export type MappedArch = (typeof MAPPED_ARCHS)[number];

/** Whether `v` names a mapped architecture (a type guard, so callers need no cast). */
export function isMappedArch(v: unknown): v is MappedArch {
  return MAPPED_ARCHS.some((a) => a === v);
}

/**
 * How the GGUF converter rearranges a tensor: llama's Q/K row permutation (`LlamaModel.permute`, with
 * n_head for q and n_head_kv for k) or the transpose of a GPT-2 Conv1D weight ([in, out] → [out, in]).
 */
export type LayoutTransform = 'none' | 'permute-q' | 'permute-k' | 'transpose';

export interface NameMapping {
  /** The name on the other side. */
  name: string;
  /** What the GGUF side has done to the HF values. */
  transform: LayoutTransform;
}

const LLAMA_GLOBAL: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

const LLAMA_LAYER: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.o_proj.bias': 'attn_output.bias',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** GPT-2 names without the optional `transformer.` prefix (`lm_head` never has it). */
const GPT2_GLOBAL: Record<string, string> = {
  'wte.weight': 'token_embd.weight',
  'wpe.weight': 'position_embd.weight',
  'ln_f.weight': 'output_norm.weight',
  'ln_f.bias': 'output_norm.bias',
  'lm_head.weight': 'output.weight',
};

const GPT2_LAYER: Record<string, string> = {
  'ln_1.weight': 'attn_norm.weight',
  'ln_1.bias': 'attn_norm.bias',
  'attn.c_attn.weight': 'attn_qkv.weight',
  'attn.c_attn.bias': 'attn_qkv.bias',
  'attn.c_proj.weight': 'attn_output.weight',
  'attn.c_proj.bias': 'attn_output.bias',
  'ln_2.weight': 'ffn_norm.weight',
  'ln_2.bias': 'ffn_norm.bias',
  'mlp.c_fc.weight': 'ffn_up.weight',
  'mlp.c_fc.bias': 'ffn_up.bias',
  'mlp.c_proj.weight': 'ffn_down.weight',
  'mlp.c_proj.bias': 'ffn_down.bias',
};

function invert(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [v, k]));
}

const LLAMA_GLOBAL_INV = invert(LLAMA_GLOBAL);
const LLAMA_LAYER_INV = invert(LLAMA_LAYER);
const GPT2_GLOBAL_INV = invert(GPT2_GLOBAL);
const GPT2_LAYER_INV = invert(GPT2_LAYER);

function transformOf(arch: MappedArch, ggufName: string): LayoutTransform {
  if (arch === 'gpt2') {
    // conversion/gpt2.py transposes the c_attn, c_proj and c_fc weights, never their biases.
    return /^blk\.\d+\.(attn_qkv|attn_output|ffn_up|ffn_down)\.weight$/.test(ggufName) ? 'transpose' : 'none';
  }
  // Only llama permutes (llama.cpp runs it with NORM RoPE); qwen2 keeps HF's layout (NEOX RoPE).
  if (arch === 'llama' && /^blk\.\d+\.attn_q\.(weight|bias)$/.test(ggufName)) return 'permute-q';
  if (arch === 'llama' && /^blk\.\d+\.attn_k\.(weight|bias)$/.test(ggufName)) return 'permute-k';
  return 'none';
}

/** The GGUF name of an HF tensor and the transform the converter applies, or undefined if unmapped. */
export function hfToGguf(arch: MappedArch, hfName: string): NameMapping | undefined {
  let name: string | undefined;
  if (arch === 'gpt2') {
    const bare = hfName.startsWith('transformer.') ? hfName.slice('transformer.'.length) : hfName;
    name = GPT2_GLOBAL[bare];
    const m = name === undefined ? /^h\.(\d+)\.(.+)$/.exec(bare) : null;
    const rest = m ? GPT2_LAYER[m[2] as string] : undefined; // group 2 always takes part in a match
    if (m && rest !== undefined) name = `blk.${m[1]}.${rest}`;
  } else {
    name = LLAMA_GLOBAL[hfName];
    const m = name === undefined ? /^model\.layers\.(\d+)\.(.+)$/.exec(hfName) : null;
    const rest = m ? LLAMA_LAYER[m[2] as string] : undefined; // group 2 always takes part in a match
    if (m && rest !== undefined) name = `blk.${m[1]}.${rest}`;
  }
  return name === undefined ? undefined : { name, transform: transformOf(arch, name) };
}

/** The HF name of a GGUF tensor (GPT-2 without the `transformer.` prefix), or undefined if unmapped. */
export function ggufToHf(arch: MappedArch, ggufName: string): NameMapping | undefined {
  const [globalInv, layerInv, prefix] =
    arch === 'gpt2' ? [GPT2_GLOBAL_INV, GPT2_LAYER_INV, 'h.'] : [LLAMA_GLOBAL_INV, LLAMA_LAYER_INV, 'model.layers.'];
  let name = globalInv[ggufName];
  if (name === undefined) {
    const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
    const rest = m ? layerInv[m[2] as string] : undefined; // group 2 always takes part in a match
    if (m && rest !== undefined) name = `${prefix}${m[1]}.${rest}`;
  }
  return name === undefined ? undefined : { name, transform: transformOf(arch, ggufName) };
}

/** Whether a name follows llama.cpp's GGUF naming (`token_embd.weight`, `blk.N.…`, `output…`). */
export function isGgufStyleName(name: string): boolean {
  return /^(blk\.\d+\.|token_embd\.|position_embd\.|output_norm\.|output\.)/.test(name);
}

/** Guess the architecture from HF tensor names: GPT-2 has `h.N.attn.c_attn`, the LLaMA family `model.layers`. */
export function archFromHfNames(names: Iterable<string>): MappedArch | undefined {
  let llamaLike = false;
  for (const n of names) {
    if (/(^|\.)h\.\d+\.attn\.c_attn\./.test(n) || /^(transformer\.)?wte\.weight$/.test(n)) return 'gpt2';
    if (n.startsWith('model.layers.') || n === 'model.embed_tokens.weight') llamaLike = true;
  }
  // llama and qwen2 share names; the difference (permutation) only matters against a GGUF, whose
  // general.architecture then decides.
  return llamaLike ? 'llama' : undefined;
}

/** Heads needed to undo the llama permutation. */
export interface HeadCounts {
  heads: number;
  kvHeads: number;
}

/**
 * Bring values stored in GGUF layout back to HF layout: the inverse of `transform`. `shape` is the
 * tensor's torch-order shape as the GGUF file declares it ([out, in] for a 2-D weight, [n] for a bias);
 * returns the HF values and shape (a GPT-2 Conv1D weight comes back as [in, out]).
 */
export function undoGgufLayout(
  transform: LayoutTransform,
  values: Float32Array,
  shape: readonly number[],
  heads?: HeadCounts,
): { values: Float32Array; shape: number[] } {
  switch (transform) {
    case 'none':
      return { values, shape: [...shape] };
    case 'transpose': {
      if (shape.length !== 2) throw new RangeError(`transpose: shape [${shape.join(', ')}] is not 2-D`);
      const [rows, cols] = shape as [number, number]; // 2-D, checked above
      return { values: transpose(values, rows, cols), shape: [cols, rows] };
    }
    case 'permute-q':
    case 'permute-k': {
      if (heads === undefined) throw new RangeError(`${transform}: head counts are needed to undo the Q/K permutation`);
      const n = transform === 'permute-q' ? heads.heads : heads.kvHeads;
      const rows = shape[0] ?? 1;
      const cols = shape.length >= 2 ? values.length / rows : 1;
      return { values: unpermuteQk(values, rows, cols, n), shape: [...shape] };
    }
  }
}

/** [rows, cols] row-major → [cols, rows] row-major. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  if (data.length !== rows * cols) throw new RangeError(`transpose: ${data.length} values is not ${rows}×${cols}`);
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c] as number;
  }
  return out;
}

/**
 * llama.cpp's Q/K permutation (`LlamaModel.permute`) and its inverse: within each head of width hd, GGUF
 * row `h*hd + 2j + s` holds HF row `h*hd + s*hd/2 + j` (s ∈ {0, 1}, j < hd/2), turning HF's split-halves
 * rotary layout into adjacent pairs. Works on a weight [rows, cols] or a bias [rows] (cols = 1).
 */
function moveQkRows(data: Float32Array, rows: number, cols: number, nHead: number, toGguf: boolean): Float32Array {
  if (nHead <= 0 || rows % nHead !== 0 || (rows / nHead) % 2 !== 0) {
    throw new RangeError(`Q/K permutation: ${rows} rows do not split into ${nHead} heads of even width`);
  }
  if (data.length !== rows * cols) throw new RangeError(`Q/K permutation: ${data.length} values is not ${rows}×${cols}`);
  const hd = rows / nHead;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < hd / 2; j++) {
      for (let s = 0; s < 2; s++) {
        const ggufRow = h * hd + 2 * j + s;
        const hfRow = h * hd + s * (hd / 2) + j;
        const [from, to] = toGguf ? [hfRow, ggufRow] : [ggufRow, hfRow];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** HF → GGUF Q/K layout (what the converter writes). */
export function permuteQk(data: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return moveQkRows(data, rows, cols, nHead, true);
}

/** GGUF → HF Q/K layout (undo the converter's permutation). */
export function unpermuteQk(data: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return moveQkRows(data, rows, cols, nHead, false);
}

/** Reorder the three equal blocks of a fused q|k|v tensor along `axis` (0: rows, 1: columns). */
export function reorderQkvBlocks(
  values: Float32Array,
  rows: number,
  cols: number,
  axis: 0 | 1,
  order: readonly [number, number, number],
): Float32Array {
  const out = new Float32Array(values.length);
  if (axis === 0) {
    const block = (rows / 3) * cols;
    order.forEach((from, to) => out.set(values.subarray(from * block, (from + 1) * block), to * block));
  } else {
    const w = cols / 3;
    for (let r = 0; r < rows; r++) {
      order.forEach((from, to) => out.set(values.subarray(r * cols + from * w, r * cols + (from + 1) * w), r * cols + to * w));
    }
  }
  return out;
}
