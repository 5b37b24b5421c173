/** HF → GGUF tensor names for the llama/qwen2 architectures (gguf-py `tensor_mapping.py`). */
const LAYER_MAP: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

export function llamaGgufName(hfName: string): string | undefined {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) return undefined;
  const rest = LAYER_MAP[m[2] as string];
  return rest === undefined ? undefined : `blk.${m[1]}.${rest}`;
}

/**
 * llama.cpp's Q/K permutation (`LlamaModel.permute`): within each head, HF's split-halves rotary layout
 * becomes adjacent pairs, so GGUF row `h*hd + 2j + s` holds HF row `h*hd + s*hd/2 + j`. Works on a
 * weight [rows, cols] or a bias [rows] (cols = 1).
 */
export function permuteQk(data: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const hd = rows / nHead;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < hd / 2; j++) {
      for (let s = 0; s < 2; s++) {
        const dst = h * hd + 2 * j + s;
        const src = h * hd + s * (hd / 2) + j;
        out.set(data.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}
