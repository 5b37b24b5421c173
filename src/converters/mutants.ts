/**
 * The mutant catalogue: the reference converter plus one real converter/quantizer bug each
 * (reference/bug-catalogue.md §3 classes A–U, §4 mutants M01–M30), with the verdict code(s) that must
 * kill it, the architectures it applies to and the target its kill is measured at. `tmgt mutants` runs
 * every mutant on every tiny model it applies to; test/mutant-kill.test.ts holds the harness to it.
 *
 * A mutant only alters the format-neutral plan (tensors by llama.cpp role, GGUF `kvs`, APR `metadata`);
 * byte-level bugs go through a tensor's `data` (the bytes written as they are) or metadata the readers
 * honour, never through the writers.
 */
import { fp16BitsToFp32, fp32ToBf16Bits, fp32ToFp16Bits, quantize } from '../formats/codecs/index.js';
import type { GgufKv } from '../formats/gguf/writer.js';
import { ggufToHf, permuteQk, reorderQkvBlocks, transpose, unpermuteQk } from '../formats/name-map.js';
import { quantizeAprQ8 } from '../formats/codecs/apr.js';
import { Prng } from '../zoo/prng.js';
import type { VerdictCode } from '../contracts/verdicts.js';
import { commonDims, type Arch, type Checkpoint } from '../zoo/types.js';
import { artifactName, findRole, requireRole, type AprPlan, type ConversionPlan, type GgufPlan, type PlannedTensor } from './plan.js';
import type { TargetId } from './targets.js';
import { encodePlannedTensor, encodeValues } from './write-artifact.js';

/** A mutant converter: the reference converter plus one real bug, with the verdict(s) that must kill it. */
export interface Mutant {
  id: `mutant:${string}`;
  description: string;
  /** The real report the bug comes from. */
  grounding: string;
  /** Codes that must all appear (as failing verdicts) for the mutant to count as killed. */
  expected: VerdictCode[];
  /** The architectures the bug applies to (default: all three). */
  archs?: readonly Arch[];
  /**
   * The zoo models it runs on, when the bug needs something only they have (a tokenizer family's vocabulary);
   * default: the trained tiny zoo, every model of its `archs`.
   */
  models?: readonly string[];
  /** The target its kill is measured at (where the real bug showed, or where its class needs it). */
  target: TargetId;
  /** Alter the reference plan (any format: tensors are found by their llama.cpp role). */
  mutate(plan: ConversionPlan, ckpt: Checkpoint): void;
}

/** Every zoo architecture, the default of `Mutant.archs`. */
export const MUTANT_ARCHS: readonly Arch[] = ['llama', 'qwen2', 'gpt2'];

/** The architectures a mutant applies to. */
export function mutantArchs(m: Mutant): readonly Arch[] {
  return m.archs ?? MUTANT_ARCHS;
}

/**
 * The lm_head tensor a converter writes (`output.weight` in GGUF, `lm_head.weight` in APR and
 * safetensors). A tied checkpoint may have none; like aprender's `resolve_f32_tied_embeddings`, the
 * mutant then materialises it from the embedding (llama.cpp loads an explicit `output.weight` in a tied
 * model and uses it). The reference APR plan already holds one.
 */
function lmHead(plan: ConversionPlan): PlannedTensor {
  const found = findRole(plan, 'output.weight');
  if (found) return found;
  const embd = findRole(plan, 'token_embd.weight');
  if (!embd) throw new Error('plan has neither an lm_head nor an embedding');
  const head: PlannedTensor = {
    name: artifactName(plan.format, plan.arch, 'output.weight'),
    role: 'output.weight',
    shape: [...embd.shape],
    dtype: embd.dtype,
    values: embd.values,
  };
  plan.tensors.push(head);
  return head;
}

/** aprender's Q8 payload (`quantizeAprQ8`: `[f32 scale][i8 × N]`), zero-padded to whole f32 words so it can pass as F32 data. */
export function aprQ8Bytes(values: Float32Array): Uint8Array {
  const q = quantizeAprQ8(values, { checkDensity: false });
  const out = new Uint8Array(Math.ceil(q.length / 4) * 4);
  out.set(q);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Plan helpers. Each throws when the plan is not what the mutant was written for, so a mutant run on a
// format or architecture it does not apply to fails the conversion loudly (F-RUNTIME-001, which
// `tmgt mutants` reports as a harness error) instead of silently writing the reference file.

function ggufPlan(plan: ConversionPlan, id: string): GgufPlan {
  if (plan.format !== 'gguf') throw new Error(`${id} applies to GGUF plans, not ${plan.format}`);
  return plan;
}

function aprPlan(plan: ConversionPlan, id: string): AprPlan {
  if (plan.format !== 'apr') throw new Error(`${id} applies to APR plans, not ${plan.format}`);
  return plan;
}

function kvOf(plan: GgufPlan, key: string): GgufKv {
  const kv = plan.kvs.find((k) => k.key === key);
  if (!kv) throw new Error(`the GGUF plan has no key ${key}`);
  return kv;
}

function removeKv(plan: GgufPlan, key: string): void {
  const i = plan.kvs.findIndex((k) => k.key === key);
  if (i < 0) throw new Error(`the GGUF plan has no key ${key}`);
  plan.kvs.splice(i, 1);
}

/** Tensors whose role matches; throws when none does (the mutant would be a silent no-op). */
function roles(plan: ConversionPlan, role: RegExp): PlannedTensor[] {
  const hits = plan.tensors.filter((t) => role.test(t.role));
  if (hits.length === 0) throw new Error(`plan has no tensor whose role matches ${role}`);
  return hits;
}

/** Tensors stored as `dtype`; throws when none is. */
function ofDType(plan: ConversionPlan, dtype: PlannedTensor['dtype']): PlannedTensor[] {
  const hits = plan.tensors.filter((t) => t.dtype === dtype);
  if (hits.length === 0) throw new Error(`plan has no ${dtype} tensor`);
  return hits;
}

const rowsCols = (t: PlannedTensor): [number, number] => {
  const rows = t.shape[0] ?? 1;
  return [rows, t.values.length / rows];
};

function requireArch(plan: ConversionPlan, archs: readonly Arch[], id: string): void {
  if (!archs.includes(plan.arch)) throw new Error(`${id} applies to ${archs.join(', ')}, not ${plan.arch}`);
}

function stdOf(values: Float32Array): number {
  let s = 0;
  let ss = 0;
  for (const v of values) {
    s += v;
    ss += v * v;
  }
  const mean = s / values.length;
  return Math.sqrt(Math.max(0, ss / values.length - mean * mean));
}

/** Q8_0 / Q4_0 block geometry (ggml: `f16 d` first, then the codes). */
const Q8_0_BLOCK_BYTES = 34;
const Q4_0_BLOCK_BYTES = 18;

/** Rewrite the f16 scale of every block of a Q8_0/Q4_0 payload (codes untouched). */
function mapBlockScales(bytes: Uint8Array, blockBytes: number, f: (d: number) => number): Uint8Array {
  const out = bytes.slice();
  for (let o = 0; o < out.length; o += blockBytes) {
    const d = fp16BitsToFp32((out[o] as number) | ((out[o + 1] as number) << 8));
    const h = f(d);
    out[o] = h & 0xff;
    out[o + 1] = (h >>> 8) & 0xff;
  }
  return out;
}

/** A scale rounded up to the next power of two (an e8m0-style shared exponent), codes kept from the exact scale. */
function pow2Ceil(d: number): number {
  if (d === 0 || !Number.isFinite(d)) return fp32ToFp16Bits(d);
  return fp32ToFp16Bits(Math.sign(d) * 2 ** Math.ceil(Math.log2(Math.abs(d))));
}

/** A value rounded to bf16 precision (round to nearest even), as f32. */
function fp32ToBf16RoundedValue(d: number): number {
  return new Float32Array(new Uint32Array([fp32ToBf16Bits(d) << 16]).buffer)[0] ?? NaN;
}

/** f32 → bf16 by dropping the low 16 bits (`>> 16`): truncation toward zero, NaN payloads may become Inf. */
function bf16Truncated(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(Float32Array.from(values).buffer);
  const out = new Uint8Array(values.length * 2);
  bits.forEach((b, i) => {
    out[2 * i] = (b >>> 16) & 0xff;
    out[2 * i + 1] = b >>> 24;
  });
  return out;
}

/** f32 values as big-endian bytes (a byte-swapped tensor to a little-endian reader). */
function f32BigEndian(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(4 * i, v, false));
  return out;
}

const GGUF_ALIGNMENT = 32;

/**
 * The smallest power-of-two alignment above GGUF's default 32 that at least one tensor offset of this
 * plan (as the writer lays it out: each tensor padded to 32) is not a multiple of.
 */
function misalignedAlignment(plan: GgufPlan): number {
  const offsets: number[] = [];
  let at = 0;
  for (const t of plan.tensors) {
    offsets.push(at);
    const n = encodePlannedTensor(t).length;
    at += n + ((GGUF_ALIGNMENT - (n % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT);
  }
  for (let a = 2 * GGUF_ALIGNMENT; a <= 1 << 20; a *= 2) if (offsets.some((o) => o % a !== 0)) return a;
  throw new Error('every tensor offset is a multiple of 1 MiB: cannot declare a misaligned alignment');
}

/** Keep only the first `keep` blocks (tensors of later blocks dropped). */
function dropBlocksFrom(plan: ConversionPlan, keep: number): void {
  plan.tensors = plan.tensors.filter((t) => {
    const m = /^blk\.(\d+)\./.exec(t.role);
    return !m || Number(m[1]) < keep;
  });
}

// ---------------------------------------------------------------------------------------------------

export const MUTANTS: readonly Mutant[] = [
  // --- A: wrong element width -----------------------------------------------------------------------
  {
    id: 'mutant:lm-head-int8-as-f32',
    description: 'lm_head written as int8 codes plus one f32 scale, declared F32 with N/4+1 elements',
    grounding: 'paiml/aprender#234 (and #231): lm_head.weight 7,077,889 vs 28,311,552 elements',
    expected: ['F-LAYOUT-CONTRACT-001'],
    target: 'apr/int8',
    mutate(plan) {
      const head = lmHead(plan);
      const bytes = aprQ8Bytes(head.values);
      head.dtype = 'F32';
      head.shape = [bytes.length / 4];
      head.data = bytes;
    },
  },
  // --- B: zeros / unwritten payload ------------------------------------------------------------------
  {
    id: 'mutant:lm-head-zeros',
    description: 'lm_head written with the right size and type but all zeros',
    grounding: 'paiml/aprender#234 (and #232): int4 lm_head 100% zeros',
    expected: ['F-DATA-QUALITY-001'],
    target: 'apr/int4',
    mutate(plan) {
      const head = lmHead(plan);
      head.values = new Float32Array(head.values.length);
      // aprender's APR Q8/Q4 writer refuses an all-zero tensor (density check); the buggy converter
      // wrote the zero-valued codes anyway, so the bytes are encoded here without that guard.
      if (head.dtype === 'APR_Q8' || head.dtype === 'APR_Q4') head.data = encodeValues(head.dtype, head.values, { checkDensity: false });
    },
  },
  // --- U: dropped layers -----------------------------------------------------------------------------
  {
    id: 'mutant:drop-last-layer',
    description: 'the last decoder block is not written (tensor count silently short)',
    grounding: 'paiml/realizar#44: 9 of 24 layers kept; paiml/aprender PR 2564',
    expected: ['F-LAYOUT-CONTRACT-006', 'F-RUNTIME-002'],
    target: 'gguf/q8_0',
    mutate(plan, ckpt) {
      const last = `blk.${commonDims(ckpt.config).layers - 1}.`;
      plan.tensors = plan.tensors.filter((t) => !t.role.startsWith(last));
    },
  },
  // --- I: transpose missing / extra -------------------------------------------------------------------
  {
    id: 'mutant:ffn-down-untransposed',
    description: 'ffn_down written with its two dimensions swapped (data transposed to match)',
    grounding: 'paiml/aprender PR 1466: FFN untransposed, "values identical, shapes transposed"',
    expected: ['F-LAYOUT-CONTRACT-002'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const t = requireRole(plan, 'blk.0.ffn_down.weight');
      const [rows, cols] = t.shape as [number, number]; // ffn_down is a 2-D matrix
      const out = new Float32Array(t.values.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.values[r * cols + c] as number;
      t.shape = [cols, rows];
      t.values = out;
    },
  },
  // --- A: bf16 in the f32 arm --------------------------------------------------------------------------
  {
    id: 'mutant:bf16-bytes-as-f32',
    description: 'attn_v (gpt2: the fused attn_qkv) written as bf16 bytes (2 per element) but declared F32 with the full shape',
    grounding: 'paiml/aprender#369: BF16 fell into the F32 arm',
    expected: ['F-LAYOUT-CONTRACT-004'],
    target: 'gguf/bf16',
    mutate(plan) {
      const t = findRole(plan, 'blk.0.attn_v.weight') ?? requireRole(plan, 'blk.0.attn_qkv.weight');
      t.dtype = 'F32';
      t.data = quantize('BF16', t.values);
    },
  },
  // --- N: f16 overflow -----------------------------------------------------------------------------------
  {
    id: 'mutant:f16-overflow-norm',
    description: 'output_norm pre-scaled ×1e5 and cast to f16 without clamping: every value overflows to Inf',
    grounding: 'tensorflow/tensorflow#43719, ggml-org/llama.cpp#13722: f16 overflow → Inf → NaN',
    expected: ['F-DATA-QUALITY-002', 'F-LOGITS-001'],
    target: 'gguf/f16',
    mutate(plan) {
      const t = requireRole(plan, 'output_norm.weight');
      t.dtype = 'F16';
      t.values = t.values.map((v) => v * 1e5);
    },
  },

  // ==== catalogue §4, beyond the seed six ==============================================================

  // --- A (M02): every weight int8 as f32 -----------------------------------------------------------------
  {
    id: 'mutant:weights-int8-as-f32',
    description:
      'every quantized 2-D weight written as aprender Q8 bytes ([f32 scale][i8 × N]) but declared F32 with N/4+1 elements; the fused GPT-2 c_attn gets one scale word per q/k/v block (N/4+3)',
    grounding: 'paiml/aprender#237 / #239: layers.0.qkv_weight 138,243 vs 552,960 (three scale words), realizar read Q8/Q4 bytes as f32',
    expected: ['F-LAYOUT-CONTRACT-001'],
    target: 'apr/int8',
    mutate(plan) {
      for (const t of ofDType(plan, 'APR_Q8')) {
        let bytes: Uint8Array;
        if (t.role.endsWith('attn_qkv.weight')) {
          // HF Conv1D [in, 3·h]: q|k|v are column blocks, each quantized with its own scale.
          const [rows, cols] = rowsCols(t);
          const w = cols / 3;
          const parts = [0, 1, 2].map((b) => {
            const block = new Float32Array(rows * w);
            for (let r = 0; r < rows; r++) block.set(t.values.subarray(r * cols + b * w, r * cols + (b + 1) * w), r * w);
            return aprQ8Bytes(block);
          });
          bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of parts) {
            bytes.set(p, at);
            at += p.length;
          }
        } else {
          bytes = aprQ8Bytes(t.values);
        }
        t.dtype = 'F32';
        t.shape = [bytes.length / 4];
        t.data = bytes;
      }
    },
  },

  // --- B (M06): embedding payload from a shifted offset --------------------------------------------------
  {
    id: 'mutant:embedding-offset-shift',
    description:
      'token_embd written from a shifted offset: the first 94.5% of its rows are zeros, the source rows pushed down (and cut off)',
    grounding:
      'aprender PMAT-234 (tensor-layout-v1 F-DATA-QUALITY-004: 94.5% leading zeros), paiml/aprender#232 ("Data likely loaded from wrong offset!")',
    expected: ['F-DATA-QUALITY-004', 'F-DATA-QUALITY-005'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const t = requireRole(plan, 'token_embd.weight');
      const [rows, cols] = rowsCols(t);
      const k = Math.ceil(0.945 * rows);
      const out = new Float32Array(t.values.length);
      out.set(t.values.subarray(0, (rows - k) * cols), k * cols);
      t.values = out;
    },
  },

  // --- B (M05): GPT-2 fused c_attn zero-filled --------------------------------------------------------
  {
    id: 'mutant:gpt2-c-attn-zeros',
    description: "GPT-2's fused c_attn written with the right size and type but all zeros (the dequant fix missed the fused Conv1D path)",
    grounding: 'paiml/aprender#241 (#255): fused qkv 100% zeros (max 80%), PPL 2.67e33',
    expected: ['F-DATA-QUALITY-001'],
    archs: ['gpt2'],
    target: 'apr/int8',
    mutate(plan) {
      for (const t of roles(plan, /^blk\.\d+\.attn_qkv\.weight$/)) {
        t.values = new Float32Array(t.values.length);
        if (t.dtype === 'APR_Q8' || t.dtype === 'APR_Q4') t.data = encodeValues(t.dtype, t.values, { checkDensity: false });
      }
    },
  },

  // --- C (M07): norms quantized ----------------------------------------------------------------------
  {
    id: 'mutant:norms-quantized',
    description:
      'every norm gain (RMSNorm; GPT-2 LayerNorm) quantized to Q4_0: 96 and 128 divide into 32-blocks, so a "does the row divide" rule lets them through',
    grounding: 'leejet/stable-diffusion.cpp PR 1861: norms of 5376 divide the 256 block, 105 went to Q4_K (SSIM 0.074)',
    expected: ['F-LAYOUT-CONTRACT-003'],
    target: 'gguf/q4_0',
    mutate(plan) {
      for (const t of roles(plan, /_norm\.weight$/)) t.dtype = 'Q4_0';
    },
  },

  // --- C (M08): lm_head quantized against the policy ---------------------------------------------------
  {
    id: 'mutant:lm-head-quantized',
    description: 'lm_head quantized to Q4_0 in an f16 conversion (the skip rule covered the embedding, not lm_head)',
    grounding: 'paiml/aprender#234: should_skip_quant() fixed for the embeddings, not lm_head',
    expected: ['F-LAYOUT-CONTRACT-007'],
    target: 'gguf/f16',
    mutate(plan) {
      lmHead(plan).dtype = 'Q4_0';
    },
  },

  // --- D (M09): GPT-2 names unmapped ------------------------------------------------------------------
  {
    id: 'mutant:gpt2-names-unmapped',
    description: "GPT-2's wte / wpe / ln_1 tensors keep their HF names in the GGUF (the name map misses them)",
    grounding: 'paiml/aprender#233 ("No embedding tensor found": wte unmapped), #255',
    expected: ['F-LAYOUT-CONTRACT-006'],
    archs: ['gpt2'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:gpt2-names-unmapped');
      requireArch(g, ['gpt2'], 'mutant:gpt2-names-unmapped');
      for (const t of roles(g, /^(token_embd\.weight|position_embd\.weight|blk\.\d+\.attn_norm\.(weight|bias))$/)) {
        const hf = ggufToHf('gpt2', t.role);
        if (!hf) throw new Error(`no HF name for ${t.role}`);
        t.name = hf.name;
      }
    },
  },

  // --- E (M10): hidden size = head_dim ----------------------------------------------------------------
  {
    id: 'mutant:gpt2-hidden-is-head-dim',
    description: "GPT-2's APR hidden_size written as the per-head width n_embd / n_head",
    grounding: 'paiml/aprender#235: hidden_dim=64 (head_dim), expected 3,216,448 elements, got 38,597,376',
    expected: ['F-META-001'],
    archs: ['gpt2'],
    target: 'apr/int8',
    mutate(plan, ckpt) {
      const a = aprPlan(plan, 'mutant:gpt2-hidden-is-head-dim');
      const d = commonDims(ckpt.config);
      a.metadata['hidden_size'] = d.hidden / d.heads;
    },
  },

  // --- E (M11): embedding_length not exported ---------------------------------------------------------
  {
    id: 'mutant:embedding-length-missing',
    description: '<arch>.embedding_length not exported (a reader sees hidden = 0)',
    grounding: 'paiml/aprender#236: "Missing vocab_size (50257) or hidden_dim (0)" on the GPT-2 GGUF round trip',
    expected: ['F-META-001'],
    target: 'gguf/f32',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:embedding-length-missing');
      removeKv(g, `${g.arch}.embedding_length`);
    },
  },

  // --- E/M (M12): GPT-2 exported with llama's keys -----------------------------------------------------
  {
    id: 'mutant:gpt2-llama-keys',
    description: "GPT-2 GGUF written with the RMSNorm eps key (layer_norm_rms_epsilon) and tokenizer.ggml.pre hardcoded to 'llama'",
    grounding: 'paiml/aprender#277: llama.cpp "unknown pre-tokenizer type: \'llama\'", GPT-2 "key not found: …layer_norm_epsilon"',
    expected: ['F-META-002', 'F-META-004'],
    archs: ['gpt2'],
    target: 'gguf/f32',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:gpt2-llama-keys');
      kvOf(g, 'gpt2.attention.layer_norm_epsilon').key = 'gpt2.attention.layer_norm_rms_epsilon';
      kvOf(g, 'tokenizer.ggml.pre').value = 'llama';
    },
  },

  // --- F (M13): rms_norm_eps ----------------------------------------------------------------------------
  {
    id: 'mutant:rms-eps-swapped',
    description: 'rms_norm_eps written as the other common value (1e-6 for a 1e-5 source, 1e-5 for a 1e-6 one)',
    grounding: 'ggml-org/llama.cpp#2373 / PR 2374 (PPL 5.8986 vs 5.8283), OpenNMT/CTranslate2 PR 1357',
    expected: ['F-META-002'],
    archs: ['llama', 'qwen2'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:rms-eps-swapped');
      const kv = kvOf(g, `${g.arch}.attention.layer_norm_rms_epsilon`);
      // the reference converter writes rms_norm_eps as an f32 number
      kv.value = Math.fround(kv.value as number) === Math.fround(1e-5) ? 1e-6 : 1e-5;
    },
  },

  // --- G (M14): Q/K RoPE permute skipped ---------------------------------------------------------------
  {
    id: 'mutant:qk-permute-skipped',
    description: "llama's Q/K rows left in HF order: the NORM-RoPE permutation convert_hf_to_gguf applies is skipped",
    grounding: 'ggml-org/llama.cpp PR 7481, jzhang38/TinyLlama#24',
    expected: ['F-FIDELITY-002'],
    archs: ['llama'],
    target: 'gguf/q8_0',
    mutate(plan, ckpt) {
      const g = ggufPlan(plan, 'mutant:qk-permute-skipped');
      requireArch(g, ['llama'], 'mutant:qk-permute-skipped');
      const d = commonDims(ckpt.config);
      for (const t of roles(g, /^blk\.\d+\.attn_[qk]\.weight$/)) {
        const [rows, cols] = rowsCols(t);
        t.values = unpermuteQk(t.values, rows, cols, t.role.includes('attn_q') ? d.heads : d.kvHeads);
      }
    },
  },

  // --- G (M15): the GQA permute with the wrong head count -------------------------------------------------
  {
    id: 'mutant:q-permute-kv-heads',
    description:
      "llama's Q permuted with n_head_kv heads instead of n_head (one GQA head count used for both projections). " +
      "K permuted with n_head, the catalogue's M15, cannot be written for llama-tiny: its K has 32 rows, which 6 (n_head) and 3 (n_head // n_head_kv) do not split into heads of even width (llama.cpp's permute would raise); the fidelity tests cover it on an 8/2-head llama",
    grounding: 'ggml-org/llama.cpp PR 3364 (n_head //= n_head_kv right only for 64/8), huggingface/transformers PR 31788',
    expected: ['F-FIDELITY-002'],
    archs: ['llama'],
    target: 'gguf/f32',
    mutate(plan, ckpt) {
      const g = ggufPlan(plan, 'mutant:q-permute-kv-heads');
      requireArch(g, ['llama'], 'mutant:q-permute-kv-heads');
      const d = commonDims(ckpt.config);
      for (const t of roles(g, /^blk\.\d+\.attn_q\.weight$/)) {
        const [rows, cols] = rowsCols(t);
        t.values = permuteQk(unpermuteQk(t.values, rows, cols, d.heads), rows, cols, d.kvHeads);
      }
    },
  },

  // --- T: a layout transform applied twice -------------------------------------------------------------
  {
    id: 'mutant:qk-permuted-twice',
    description: "llama's Q/K permutation applied a second time to already-permuted rows (the GGUF permute run on a GGUF-layout source)",
    grounding: 'Blaizzy/mlx-vlm#1521 (a transform applied twice)',
    expected: ['F-FIDELITY-002'],
    archs: ['llama'],
    target: 'gguf/f16',
    mutate(plan, ckpt) {
      const g = ggufPlan(plan, 'mutant:qk-permuted-twice');
      requireArch(g, ['llama'], 'mutant:qk-permuted-twice');
      const d = commonDims(ckpt.config);
      for (const t of roles(g, /^blk\.\d+\.attn_[qk]\.weight$/)) {
        const [rows, cols] = rowsCols(t);
        t.values = permuteQk(t.values, rows, cols, t.role.includes('attn_q') ? d.heads : d.kvHeads);
      }
    },
  },

  // --- H (M16): RoPE NORM vs NEOX -----------------------------------------------------------------------
  {
    id: 'mutant:qwen2-declared-llama',
    description:
      'qwen2 GGUF declared general.architecture = llama (keys renamed): llama.cpp runs NORM RoPE on the NEOX (unpermuted) weights',
    grounding: 'ggml-org/llama.cpp PR 13260 (broken "over a year"), huggingface/candle#3410 (~30 good tokens, then repetition)',
    expected: ['F-META-003'],
    archs: ['qwen2'],
    target: 'gguf/f32',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:qwen2-declared-llama');
      requireArch(g, ['qwen2'], 'mutant:qwen2-declared-llama');
      kvOf(g, 'general.architecture').value = 'llama';
      for (const kv of g.kvs) if (kv.key.startsWith('qwen2.')) kv.key = `llama.${kv.key.slice('qwen2.'.length)}`;
    },
  },
  {
    id: 'mutant:apr-rope-type-norm',
    description:
      "APR rope_type 0 (NORM) for HF-layout (unpermuted) Q/K weights, which need NEOX (aprender's infer_rope_type names llama NORM)",
    grounding: 'paiml/aprender PR 2084 (one RoPE style applied to every architecture), ikawrakow/ik_llama.cpp PR 2290 (PPL 252.8 vs 4.26)',
    expected: ['F-META-003'],
    archs: ['llama', 'qwen2'],
    target: 'apr/f16',
    mutate(plan) {
      aprPlan(plan, 'mutant:apr-rope-type-norm').metadata['rope_type'] = 0;
    },
  },

  // --- I (M17, M18): Conv1D transpose missing, square weight transposed ------------------------------------
  {
    id: 'mutant:conv1d-untransposed',
    description: "GPT-2's Conv1D weights (c_attn, c_proj, c_fc, mlp.c_proj) left in HF [in, out] layout in the GGUF",
    grounding: 'AutoGPTQ/AutoGPTQ PR 139 (Conv1D not transposed)',
    expected: ['F-LAYOUT-CONTRACT-002', 'F-FIDELITY-002'],
    archs: ['gpt2'],
    target: 'gguf/f16',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:conv1d-untransposed');
      requireArch(g, ['gpt2'], 'mutant:conv1d-untransposed');
      const conv = g.tensors.filter((t) => ggufToHf('gpt2', t.role)?.transform === 'transpose');
      if (conv.length === 0) throw new Error('no Conv1D weight in the plan');
      for (const t of conv) {
        const [rows, cols] = rowsCols(t);
        t.values = transpose(t.values, rows, cols);
        t.shape = [cols, rows];
      }
    },
  },
  {
    id: 'mutant:square-transposed',
    description: 'attn_output (square, so no shape check can see it) written transposed',
    grounding: 'paiml/aprender PR 1466 (transpose applied to the wrong matrices)',
    expected: ['F-FIDELITY-002'],
    archs: ['llama', 'qwen2'],
    target: 'gguf/f16',
    mutate(plan) {
      for (const t of roles(plan, /^blk\.\d+\.attn_output\.weight$/)) {
        const [rows, cols] = rowsCols(t);
        if (rows !== cols) throw new Error(`${t.role} is not square (${rows}×${cols})`);
        t.values = transpose(t.values, rows, cols);
      }
    },
  },

  // --- J (M19): fused q|k|v block order --------------------------------------------------------------
  {
    id: 'mutant:qkv-order-swapped',
    description: "GPT-2's fused attn_qkv split and re-stacked as v, k, q",
    grounding: 'lablup/mlxcel PR 928 ("No shape assertion anywhere can catch it"), huggingface/optimum-quanto#74',
    expected: ['F-FIDELITY-002'],
    archs: ['gpt2'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:qkv-order-swapped');
      // GGUF holds c_attn transposed, [3·h, in]: q|k|v are row blocks.
      for (const t of roles(g, /^blk\.\d+\.attn_qkv\.weight$/))
        t.values = reorderQkvBlocks(t.values, t.shape[0] ?? 0, t.values.length / (t.shape[0] ?? 1), 0, [2, 1, 0]);
    },
  },

  // --- K (M20): qwen2 q/k/v biases dropped -----------------------------------------------------------------
  {
    id: 'mutant:qkv-bias-dropped',
    description: "qwen2's q/k/v projection biases not written (a llama-shaped converter has no slot for them)",
    grounding: 'sbryngelson/ANEForge PR 253 (mojibake on Qwen2; TinyLlama fine)',
    expected: ['F-LAYOUT-CONTRACT-006'],
    archs: ['qwen2'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const dropped = new Set(roles(plan, /^blk\.\d+\.attn_[qkv]\.bias$/));
      plan.tensors = plan.tensors.filter((t) => !dropped.has(t));
    },
  },

  // --- L (M21): untied lm_head ----------------------------------------------------------------------------
  {
    id: 'mutant:untied-output-dropped',
    description: "qwen2's untied output.weight not written (the converter assumed tied embeddings; llama.cpp then reuses token_embd)",
    grounding: 'ggml-org/llama.cpp#12567 (tied embeddings / output.weight)',
    expected: ['F-LAYOUT-CONTRACT-006'],
    archs: ['qwen2'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const head = requireRole(plan, 'output.weight');
      plan.tensors = plan.tensors.filter((t) => t !== head);
    },
  },
  {
    id: 'mutant:lm-head-random',
    description:
      "lm_head not loaded from the checkpoint (a tied one not tied either): written as a fresh random init with the source's std, so shape, density and norm pass",
    grounding: 'huggingface/transformers PR 43429 (random lm_head → gibberish)',
    expected: ['F-FIDELITY-001'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const head = lmHead(plan);
      head.values = new Prng(43429).normals(head.values.length, stdOf(head.values));
    },
  },

  // --- M (M22): tokenizer ---------------------------------------------------------------------------------
  {
    id: 'mutant:bos-always-prepended',
    description: 'tokenizer.ggml.add_bos_token = true for a tokenizer that adds no BOS: every prompt gains a token',
    grounding: 'ggml-org/llama.cpp#3966, PR 6920 (double BOS), ollama/ollama#17698',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    mutate(plan) {
      kvOf(ggufPlan(plan, 'mutant:bos-always-prepended'), 'tokenizer.ggml.add_bos_token').value = true;
    },
  },
  {
    id: 'mutant:duplicate-tokens',
    description: 'a token duplicated in the GGUF vocabulary (id 300 holds the text of id 299)',
    grounding: "paiml/aprender#277: Qwen2 export trips llama.cpp's id_to_token.size() assert (duplicate tokens)",
    expected: ['F-META-004'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const kv = kvOf(ggufPlan(plan, 'mutant:duplicate-tokens'), 'tokenizer.ggml.tokens');
      const tokens = Array.from(kv.value as ArrayLike<string>); // tokenizer.ggml.tokens: an array of strings
      tokens[300] = tokens[299] as string; // every zoo vocabulary holds more than 300 tokens
      kv.value = tokens;
    },
  },

  // --- M: tokenizer bugs of one vocabulary family (issue 10). SentencePiece-derived (Llama-2) ----------------
  {
    id: 'mutant:spm-scores-dropped',
    description: 'a SentencePiece-derived vocabulary written without tokenizer.ggml.scores (llama.cpp then has no merge priority)',
    grounding: 'convert_hf_to_gguf.py LlamaModel._set_vocab_sentencepiece writes scores; converters that reuse the BPE path drop them',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    models: ['llama-tiny-llama2'],
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:spm-scores-dropped');
      kvOf(g, 'tokenizer.ggml.scores');
      g.kvs = g.kvs.filter((k) => k.key !== 'tokenizer.ggml.scores');
    },
  },
  {
    id: 'mutant:spm-scores-flat',
    description: "every score of a SentencePiece-derived vocabulary written as -1000 (LlamaHfVocab's placeholder): merges go left to right",
    grounding: 'llama.cpp gguf-py vocab.py LlamaHfVocab (placeholder scores for tokenizer.json vocabularies); issue 10 of this project',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    models: ['llama-tiny-llama2'],
    mutate(plan) {
      const kv = kvOf(ggufPlan(plan, 'mutant:spm-scores-flat'), 'tokenizer.ggml.scores');
      kv.value = Array.from(kv.value as ArrayLike<number>, () => -1000); // tokenizer.ggml.scores: an array of numbers
    },
  },
  {
    id: 'mutant:spm-byte-tokens-normal',
    description:
      'the 256 byte-fallback tokens <0x00>…<0xFF> typed NORMAL (1) instead of BYTE (6): emoji and rare text tokenize as literal "<0xF0>"',
    grounding: 'ggml-org/llama.cpp#3486 (byte tokens typed normal break byte fallback); issue 10 of this project',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    models: ['llama-tiny-llama2'],
    mutate(plan) {
      const kv = kvOf(ggufPlan(plan, 'mutant:spm-byte-tokens-normal'), 'tokenizer.ggml.token_type');
      kv.value = Array.from(kv.value as ArrayLike<number>, (t) => (t === 6 ? 1 : t)); // token types: an array of numbers
    },
  },
  {
    id: 'mutant:spm-bom-token-lost',
    description: 'the token "\\ufeff" (U+FEFF) written as "" by a UTF-8 decoder that drops a leading BOM (TextDecoder without ignoreBOM)',
    grounding: 'issue 10 of this project: Llama-2 id 31759 written as "" where the source has "\\ufeff"',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    models: ['llama-tiny-llama2'],
    mutate(plan) {
      const kv = kvOf(ggufPlan(plan, 'mutant:spm-bom-token-lost'), 'tokenizer.ggml.tokens');
      const tokens = Array.from(kv.value as ArrayLike<string>); // tokenizer.ggml.tokens: an array of strings
      if (!tokens.includes('\ufeff')) throw new Error('the vocabulary has no U+FEFF token');
      kv.value = tokens.map((t) => (t === '\ufeff' ? '' : t));
    },
  },
  {
    id: 'mutant:spm-model-gpt2',
    description: "a SentencePiece-derived vocabulary declared tokenizer.ggml.model 'gpt2' (byte-level BPE) instead of 'llama'",
    grounding:
      'issue 10 of this project (the reference wrote Llama-2 as a BPE vocabulary); llama.cpp llama-vocab.cpp LLAMA_VOCAB_TYPE_SPM vs BPE',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    models: ['llama-tiny-llama2'],
    mutate(plan) {
      kvOf(ggufPlan(plan, 'mutant:spm-model-gpt2'), 'tokenizer.ggml.model').value = 'gpt2';
    },
  },
  // --- M: byte-level BPE (GPT-2, Llama-3, Qwen, the zoo's own) ----------------------------------------------------
  {
    id: 'mutant:bpe-pre-default',
    description: "a byte-level BPE vocabulary written with tokenizer.ggml.pre 'default' (the regex llama.cpp falls back to), not its own",
    grounding: 'issue 10 of this project (Llama-3 written with pre default where llama.cpp expects llama-bpe); paiml/aprender#277',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    mutate(plan) {
      kvOf(ggufPlan(plan, 'mutant:bpe-pre-default'), 'tokenizer.ggml.pre').value = 'default';
    },
  },
  {
    id: 'mutant:bpe-merges-split-into-characters',
    description: 'every merge "a b" re-written from its first two characters ("Ġ t" → "Ġ  "): duplicated and missing merges',
    grounding: 'issue 10 of this project: merges "▁  " and "Ġ  " at rank 0, 1,017 and 2,743 duplicates',
    expected: ['F-META-004'],
    target: 'gguf/f32',
    mutate(plan) {
      const kv = kvOf(ggufPlan(plan, 'mutant:bpe-merges-split-into-characters'), 'tokenizer.ggml.merges');
      kv.value = Array.from(kv.value as ArrayLike<string>, (m) => `${m[0] ?? ''} ${m[1] ?? ''}`); // merges: an array of strings
    },
  },

  // --- O (M24): bf16 by truncation --------------------------------------------------------------------
  {
    id: 'mutant:bf16-truncated',
    description: 'every BF16 tensor converted by `>> 16` (truncation toward zero) instead of round-to-nearest-even',
    grounding: 'paiml/aprender PR 2144 (bf16 truncation, NaN → Inf), mmastrac/diffgemma PR 18 (−0.28% L2 at cos 1.000000000)',
    expected: ['F-FIDELITY-003'],
    target: 'gguf/bf16',
    mutate(plan) {
      for (const t of ofDType(plan, 'BF16')) t.data = bf16Truncated(t.values);
    },
  },

  // --- P (M25–M27): block-scale bugs -------------------------------------------------------------------------
  {
    id: 'mutant:q8-scale-pow2',
    description:
      'Q8_0 codes computed from the exact f32 scale, but the stored scale rounded up to a power of two (a shared-exponent scale): each block dequantizes up to 2× too large.',
    grounding:
      'huggingface/transformers PR 46763 (scale off by ≤ 2×, "shapes and dtypes are valid"), antirez/ds4 PR 844 (scale stored rounded)',
    expected: ['F-FIDELITY-001'],
    target: 'gguf/q8_0',
    mutate(plan) {
      for (const t of ofDType(plan, 'Q8_0')) t.data = mapBlockScales(quantize('Q8_0', t.values), Q8_0_BLOCK_BYTES, pow2Ceil);
    },
  },
  {
    id: 'mutant:q8-scale-bf16',
    description:
      'Q8_0 codes computed from the exact f32 scale, but the stored f16 scale rounded through bf16 (8 mantissa bits instead of 11): every block ' +
      "is off by up to 0.4 %. Statistics cannot see it (worst tensor SQNR 44.9 dB against the reference's 45.3); judged against the Q8_0 " +
      'reference quantizer of the stored type, every tensor is ≥ 0.25 dB below it',
    grounding: 'antirez/ds4 PR 844 (scale stored rounded), issue 5 of this project (the equivalent mutant no statistical bound kills)',
    expected: ['F-FIDELITY-001'],
    target: 'gguf/q8_0',
    mutate(plan) {
      for (const t of ofDType(plan, 'Q8_0'))
        t.data = mapBlockScales(quantize('Q8_0', t.values), Q8_0_BLOCK_BYTES, (d) => fp32ToFp16Bits(fp32ToBf16RoundedValue(d)));
    },
  },
  {
    id: 'mutant:q4-nibble-swap',
    description: 'Q4_0 nibbles swapped: element j of each block in the high nibble and j+16 in the low one',
    grounding: '1bit-MONSTER/1bit-MONSTER#153 (nibble / lane aliasing, cos 0.16), paiml/aprender PR 1924 (scale↔lane map)',
    expected: ['F-FIDELITY-001'],
    target: 'gguf/q4_0',
    mutate(plan) {
      for (const t of ofDType(plan, 'Q4_0')) {
        const bytes = quantize('Q4_0', t.values);
        for (let o = 0; o < bytes.length; o += Q4_0_BLOCK_BYTES) {
          for (let j = 2; j < Q4_0_BLOCK_BYTES; j++) {
            const b = bytes[o + j] as number;
            bytes[o + j] = ((b & 0x0f) << 4) | (b >>> 4);
          }
        }
        t.data = bytes;
      }
    },
  },
  {
    id: 'mutant:q4-scale-bf16-bits',
    description: 'Q4_0 block scales written as bf16 bits in the f16 slot (read back as f16 they are 100–1000× too large)',
    grounding: '1bit-MONSTER/1bit-MONSTER#677 (f16 scale read as bf16)',
    expected: ['F-FIDELITY-001'],
    target: 'gguf/q4_0',
    mutate(plan) {
      for (const t of ofDType(plan, 'Q4_0')) t.data = mapBlockScales(quantize('Q4_0', t.values), Q4_0_BLOCK_BYTES, fp32ToBf16Bits);
    },
  },

  // --- Q (M28): misaligned offsets -----------------------------------------------------------------------------
  {
    id: 'mutant:alignment-mismatch',
    description:
      'general.alignment declared larger (the smallest power of two above 32 that some offset misses) while tensor data is padded to the default 32: offsets are misaligned for a reader that honours the key',
    grounding: 'ollama/ollama PR 10239 (alignment/padding of tensor data), ggml-org/llama.cpp PR 18291',
    expected: ['F-FILE-003'],
    target: 'gguf/q8_0',
    mutate(plan) {
      const g = ggufPlan(plan, 'mutant:alignment-mismatch');
      const at = g.kvs.findIndex((k) => k.key === 'general.quantization_version');
      g.kvs.splice(at + 1, 0, { key: 'general.alignment', type: 'u32', value: misalignedAlignment(g) });
    },
  },

  // --- R (M29): byte order ------------------------------------------------------------------------------------
  {
    id: 'mutant:byteswapped',
    description:
      'every F32 tensor written big-endian except the first 1-D tensor (a norm or bias left in native order), in a little-endian GGUF',
    grounding: 'ggml-org/llama.cpp#12863 (big-endian conversion: one bias not swapped)',
    expected: ['F-DATA-QUALITY-002'],
    target: 'gguf/f32',
    mutate(plan) {
      const f32 = ofDType(plan, 'F32');
      const kept = f32.find((t) => t.shape.length === 1);
      for (const t of f32) if (t !== kept) t.data = f32BigEndian(t.values);
    },
  },

  // --- S (M30): silent no-op ----------------------------------------------------------------------------------
  {
    id: 'mutant:quantize-no-op',
    description: 'the quantizer returns its input: every tensor stays F32 in a q4_0 file (general.file_type still says Q4_0), exit 0',
    grounding: 'paiml/aprender#276: quantize int4 wrote 538,090,371 B for 538,090,408 B in, "status":"success"',
    expected: ['F-LAYOUT-CONTRACT-007'],
    target: 'gguf/q4_0',
    mutate(plan) {
      for (const t of plan.tensors) {
        t.dtype = 'F32';
        delete t.data;
      }
    },
  },

  // --- U (M30): truncated to the first layers, metadata consistent ---------------------------------------------
  {
    id: 'mutant:layers-truncated',
    description:
      'only the first ⌈3N/8⌉ decoder blocks written (9 of 24 in realizar#44), with the layer count rewritten to match so the file loads',
    grounding: 'paiml/realizar#44 (9/24 layers kept), paiml/aprender PR 2564',
    expected: ['F-LAYOUT-CONTRACT-006', 'F-META-001'],
    target: 'apr/f32',
    mutate(plan, ckpt) {
      const a = aprPlan(plan, 'mutant:layers-truncated');
      const keep = Math.ceil((3 * commonDims(ckpt.config).layers) / 8);
      dropBlocksFrom(a, keep);
      a.metadata['num_layers'] = keep;
      a.metadata['param_count'] = a.tensors.reduce((n, t) => n + t.values.length, 0);
      const kept = new Set(a.tensors.map((t) => t.name));
      const shapes = a.metadata['tensor_shapes'];
      if (shapes && typeof shapes === 'object')
        a.metadata['tensor_shapes'] = Object.fromEntries(Object.entries(shapes).filter(([name]) => kept.has(name)));
    },
  },
];

export function findMutant(id: string): Mutant | undefined {
  return MUTANTS.find((m) => m.id === id);
}
