/**
 * Which storage type each tensor gets, per target, as the real tools decide it — and the same decision
 * as a declared policy (`referencePolicy`) the layout checks hold the reference converter to.
 *
 * - convert_hf_to_gguf.py `--outtype f32|f16|bf16` (`ModelBase.prepare_tensors`, formats.md §1.6):
 *   1-D tensors, `*_norm.weight`, anything not named `*.weight` (biases) and `position_embd` stay F32;
 *   every other tensor gets the out type.
 * - llama-quantize, not `--pure` (`src/llama-quant.cpp` at ggml-org/llama.cpp 007dbbf:
 *   `tensor_allows_quantization`, `llama_tensor_get_type_impl`, `tensor_type_fallback`), emulated on the
 *   f32 conversion. Rules implemented (the ones any of our ftypes can reach):
 *   1. only names ending in "weight", n_dims ≥ 2, not containing `_norm.weight`, not `position_embd.weight`
 *      / `token_types.weight` (nor the MoE/SSM/multimodal names, which our archs do not have) are
 *      quantized; everything else keeps its f32-conversion type;
 *   2. `output.weight`, or `token_embd.weight` when the model has no `output.weight` (tied), becomes Q8_0
 *      when ne[0] is not a multiple of the default type's block, else Q6_K unless the default type is Q8_0;
 *   3. Q4_K_M: attn_v-like tensors (attn_v, attn_qkv) and ffn_down get Q6_K when `use_more_bits(i, n)`
 *      (i < n/8 || i ≥ 7n/8 || (i − n/8) % 3 == 2, i counted in llama.cpp's tensor order); other ftypes
 *      here (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q6_K) have no per-category rule without an imatrix;
 *   4. a type whose block does not divide ne[0] falls back: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0
 *      (Q2_K/Q3_K → Q4_0, IQ* → IQ4_NL: unreachable here), then F16 if the fallback still does not divide.
 *      For a legacy 32-block type (Q8_0, Q4_*, Q5_*) whose block does not divide ne[0], current
 *      llama-quantize aborts ("no tensor type fallback is defined"); the reference writes F16 instead,
 *      as older llama-quantize (`convert_incompatible_tensor`) and convert_hf_to_gguf's own `QuantError`
 *      fallback did. No zoo model reaches it (every row length is a multiple of 32).
 *   The tiny models' rows (96, 128, 224) are not multiples of 256, so at q4_k and q6_k every K-quant
 *   falls back: q4_k holds Q5_0 and Q8_0, q6_k holds only Q8_0.
 * - aprender `apr import --quantize int8|int4|fp16` (`write.rs` `dispatch_quantize`, newer GH-88
 *   `should_skip_quantization`): int8 → APR_Q8 and int4 → APR_Q4 unless the name contains `bias`,
 *   `layernorm`, `layer_norm` or `norm.weight`, or the tensor has < 1024 elements (then F32); embeddings
 *   and lm_head ARE quantized; fp16 → F16 for every tensor; no quantization → F32.
 * - `save_pretrained` after `model.half()` / `.to(torch.bfloat16)`: every tensor in that dtype.
 */
import type { QuantPolicy } from '../contracts/policy.js';
import { TYPE_INFO } from '../formats/codecs/index.js';
import type { DType } from '../formats/types.js';
import type { Target } from './targets.js';

/** A tensor as the type rules see it: artifact name and torch-order shape (ne reversed). */
export interface TypedTensorIn {
  name: string;
  shape: number[];
}

/** ne[0] of a torch-order shape: the row length. */
const rowLength = (shape: readonly number[]): number => shape[shape.length - 1] ?? 1;

const divides = (dtype: DType, n: number): boolean => n % TYPE_INFO[dtype].blockSize === 0;

// ---------------------------------------------------------------------------------------------------
// convert_hf_to_gguf.py

/** convert_hf_to_gguf's F32-kept tensors (`prepare_tensors`): 1-D, `*_norm.weight`, non-`.weight`, POS_EMBD. */
export function convertKeepsF32(name: string, shape: readonly number[]): boolean {
  return shape.length <= 1 || name.endsWith('_norm.weight') || !name.endsWith('.weight') || name === 'position_embd.weight';
}

/** The type convert_hf_to_gguf `--outtype` gives a tensor (F32, F16 or BF16 out types). */
export function convertType(name: string, shape: readonly number[], outType: DType): DType {
  return convertKeepsF32(name, shape) ? 'F32' : outType;
}

// ---------------------------------------------------------------------------------------------------
// llama-quantize

/** `tensor_allows_quantization` for the names our architectures have. */
export function llamaQuantizeAllows(name: string, shape: readonly number[]): boolean {
  if (shape.length < 2) return false;
  if (!name.endsWith('weight')) return false;
  if (name.includes('_norm.weight')) return false;
  if (name.includes('ffn_gate_inp.weight')) return false;
  return name !== 'position_embd.weight' && name !== 'token_types.weight';
}

type Category =
  | 'token_embd'
  | 'output'
  | 'attn_v_like'
  | 'attn_k'
  | 'attn_q'
  | 'attn_output'
  | 'ffn_up'
  | 'ffn_gate'
  | 'ffn_down'
  | 'other';

/** `tensor_get_category` (attn_qkv and attn_v share the attn_v branch: `category_is_attn_v`). */
function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight') || name.includes('attn_kv_b.weight') || name.includes('attn_v.weight')) return 'attn_v_like';
  if (name.includes('attn_k.weight')) return 'attn_k';
  if (name.includes('attn_q.weight')) return 'attn_q';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_up')) return 'ffn_up';
  if (name.includes('ffn_gate')) return 'ffn_gate';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

/** llama_model_loader's `weight_name_comparer`: layer number (−1 for non-`blk.N.` names), then bytes. */
export function llamaCppTensorOrder(a: string, b: string): number {
  const layer = (n: string): number => {
    const m = /^blk\.(\d+)\./.exec(n);
    return m ? Number(m[1]) : -1;
  };
  const la = layer(a);
  const lb = layer(b);
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}

const useMoreBits = (i: number, n: number): boolean =>
  i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/** `tensor_type_fallback`: the K-quant substitutes, then F16. */
export function llamaQuantizeFallback(dtype: DType, ne0: number): DType {
  if (divides(dtype, ne0)) return dtype;
  const substitute: Partial<Record<DType, DType>> = { Q4_K: 'Q5_0', Q6_K: 'Q8_0' };
  const next = substitute[dtype];
  // Legacy 32-block types have no substitute (see the module comment): F16, like convert_hf_to_gguf.
  if (next === undefined || !divides(next, ne0)) return 'F16';
  return next;
}

/** The llama_ftype values the reference emulates, with their default type (`llama_ftype_get_default_type`). */
const FTYPE_DEFAULT: Readonly<Record<number, DType>> = { 7: 'Q8_0', 2: 'Q4_0', 3: 'Q4_1', 8: 'Q5_0', 9: 'Q5_1', 15: 'Q4_K', 18: 'Q6_K' };
const FTYPE_Q4_K_M = 15;

/**
 * llama-quantize's choice for every tensor of an f32 GGUF (name → type), given the tensors' f32-conversion
 * types (`current`) and the model's layer count. Counters run in llama.cpp's tensor order, as the
 * preliminary loop of `llama_model_quantize_impl` does.
 */
export function llamaQuantizeTypes(
  tensors: readonly (TypedTensorIn & { current: DType })[],
  ftype: number,
  nLayer: number,
): Map<string, DType> {
  const defaultType = FTYPE_DEFAULT[ftype];
  if (defaultType === undefined) throw new Error(`llama-quantize emulation: ftype ${ftype} is not supported`);
  const ordered = [...tensors].sort((a, b) => llamaCppTensorOrder(a.name, b.name));
  const hasTiedEmbeddings = !ordered.some((t) => t.name === 'output.weight');
  const nAttentionWv = ordered.filter((t) => category(t.name) === 'attn_v_like').length;
  let iAttentionWv = 0;
  let iFfnDown = 0;
  const out = new Map<string, DType>();
  for (const t of ordered) {
    if (!llamaQuantizeAllows(t.name, t.shape)) {
      out.set(t.name, t.current);
      continue;
    }
    const cat = category(t.name);
    const ne0 = rowLength(t.shape);
    let type: DType = defaultType;
    if (cat === 'output' || (hasTiedEmbeddings && cat === 'token_embd')) {
      if (!divides(defaultType, ne0)) type = 'Q8_0';
      else if (defaultType !== 'Q8_0') type = 'Q6_K';
    } else if (cat === 'attn_v_like') {
      if (ftype === FTYPE_Q4_K_M && useMoreBits(iAttentionWv, nAttentionWv)) type = 'Q6_K';
      iAttentionWv++;
    } else if (cat === 'ffn_down') {
      if (ftype === FTYPE_Q4_K_M && useMoreBits(iFfnDown, nLayer)) type = 'Q6_K';
      iFfnDown++;
    }
    out.set(t.name, llamaQuantizeFallback(type, ne0));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// aprender

/** Elements below which aprender never quantizes (`should_skip_quantization`). */
export const APR_MIN_QUANTIZED_ELEMENTS = 1024;

/** aprender's `should_skip_quantization(name, n)`, the newer (GH-88) version. */
export function aprSkipsQuantization(name: string, elementCount: number): boolean {
  return /bias|layernorm|layer_norm|norm\.weight/.test(name) || elementCount < APR_MIN_QUANTIZED_ELEMENTS;
}

/** The APR dtype aprender's `dispatch_quantize` writes for one tensor at this target. */
export function aprType(name: string, shape: readonly number[], target: Target): DType {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (target.weightDType) {
    case 'F16':
      return 'F16';
    case 'APR_Q8':
    case 'APR_Q4':
      return aprSkipsQuantization(name, n) ? 'F32' : target.weightDType;
    default:
      return 'F32';
  }
}

// ---------------------------------------------------------------------------------------------------
// Policies

/** GGUF names llama.cpp keeps in high precision (convert_hf_to_gguf and llama-quantize agree on them). */
const GGUF_HIGH_PRECISION = ['_norm\\.(weight|bias)$', '\\.bias$', '^position_embd\\.weight$'];
/** aprender's name rule. Its size rule (< 1024 elements) has no name: it keeps GPT-2's `ln_1/ln_2/ln_f.weight` in F32 for every zoo model. */
const APR_HIGH_PRECISION = ['bias', 'layernorm', 'layer_norm', 'norm\\.weight$', '(^|\\.)ln_(1|2|f)\\.weight$'];
/** HF norm and bias names (llama/qwen2 `*layernorm.weight`, `model.norm.weight`; GPT-2 `ln_*`), for float targets. */
const HF_HIGH_PRECISION = ['norm\\.weight$', '(^|\\.)ln_(1|2|f)\\.(weight|bias)$', '\\.bias$'];

/**
 * The reference converter's quantization policy at a target, as data (F-LAYOUT-CONTRACT-003/-007):
 * which tensors stay high precision and in what, and which types the other 2-D weights may have —
 * the target's type plus every type llama-quantize's output rule and fallbacks can put there.
 */
export function referencePolicy(target: Target): QuantPolicy {
  const w = target.weightDType;
  switch (target.producer) {
    case 'convert_hf_to_gguf':
      return { highPrecision: GGUF_HIGH_PRECISION, highPrecisionDTypes: ['F32'], quantizedDTypes: [w], expectsQuantized: false };
    case 'llama-quantize': {
      // The output rule adds Q6_K (or Q8_0 when the row does not divide into blocks); the fallbacks add
      // Q5_0 (from Q4_K), Q8_0 (from Q6_K) and F16 (nothing divides).
      const extra: DType[] =
        w === 'Q8_0' ? ['F16'] : w === 'Q4_K' ? ['Q6_K', 'Q5_0', 'Q8_0', 'F16'] : w === 'Q6_K' ? ['Q8_0', 'F16'] : ['Q6_K', 'Q8_0', 'F16'];
      return { highPrecision: GGUF_HIGH_PRECISION, highPrecisionDTypes: ['F32'], quantizedDTypes: [w, ...extra], expectsQuantized: true };
    }
    case 'aprender':
      if (w === 'APR_Q8' || w === 'APR_Q4')
        return { highPrecision: APR_HIGH_PRECISION, highPrecisionDTypes: ['F32'], quantizedDTypes: [w], expectsQuantized: true };
      // fp16 converts every tensor, norms and biases included; no quantization keeps every tensor F32.
      return { highPrecision: HF_HIGH_PRECISION, highPrecisionDTypes: [w], quantizedDTypes: [w], expectsQuantized: false };
    case 'save_pretrained':
      return { highPrecision: HF_HIGH_PRECISION, highPrecisionDTypes: [w], quantizedDTypes: [w], expectsQuantized: false };
  }
}
