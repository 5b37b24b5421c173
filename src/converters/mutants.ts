import { quantize } from '../formats/codecs/index.js';
import type { VerdictCode } from '../checks/codes.js';
import { commonDims, type Checkpoint } from '../zoo/types.js';
import type { GgufPlan, PlannedTensor } from './reference.js';

/** A mutant converter: the reference converter plus one real bug, with the verdict(s) that must kill it. */
export interface Mutant {
  id: `mutant:${string}`;
  description: string;
  /** The real report the bug comes from. */
  grounding: string;
  expected: VerdictCode[];
  mutate(plan: GgufPlan, ckpt: Checkpoint): void;
}

/**
 * The lm_head tensor a converter writes. A tied checkpoint has none; like aprender's
 * `resolve_f32_tied_embeddings`, the mutant then materialises `output.weight` from the embedding
 * (llama.cpp loads an explicit `output.weight` in a tied model and uses it).
 */
function lmHead(plan: GgufPlan): PlannedTensor {
  const found = plan.tensors.find((t) => t.name === 'output.weight');
  if (found) return found;
  const embd = plan.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new Error('plan has neither output.weight nor token_embd.weight');
  const head: PlannedTensor = { name: 'output.weight', shape: [...embd.shape], dtype: embd.dtype, values: embd.values };
  plan.tensors.push(head);
  return head;
}

/** aprender's Q8 payload: `[f32 scale][i8 × N]`, scale = max|x|/127 (1 when all zero), round half away from zero. */
export function aprQ8Bytes(values: Float32Array): Uint8Array {
  let amax = 0;
  for (const v of values) amax = Math.max(amax, Math.abs(v));
  const scale = amax === 0 ? 1 : Math.fround(amax / 127);
  const padded = Math.ceil((4 + values.length) / 4) * 4;
  const out = new Uint8Array(padded);
  new DataView(out.buffer).setFloat32(0, scale, true);
  for (let i = 0; i < values.length; i++) {
    const x = (values[i] as number) / scale;
    const q = Math.max(-127, Math.min(127, Math.sign(x) * Math.round(Math.abs(x))));
    out[4 + i] = q & 0xff;
  }
  return out;
}

function tensor(plan: GgufPlan, name: string): PlannedTensor {
  const t = plan.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`plan has no ${name}`);
  return t;
}

export const MUTANTS: readonly Mutant[] = [
  {
    id: 'mutant:lm-head-int8-as-f32',
    description: 'lm_head written as int8 codes plus one f32 scale, declared F32 with N/4+1 elements',
    grounding: 'paiml/aprender#234 (and #231): lm_head.weight 7,077,889 vs 28,311,552 elements',
    expected: ['F-LAYOUT-CONTRACT-001'],
    mutate(plan) {
      const head = lmHead(plan);
      const bytes = aprQ8Bytes(head.values);
      head.dtype = 'F32';
      head.shape = [bytes.length / 4];
      head.data = bytes;
    },
  },
  {
    id: 'mutant:lm-head-zeros',
    description: 'lm_head written with the right size and type but all zeros',
    grounding: 'paiml/aprender#234 (and #232): int4 lm_head 100% zeros',
    expected: ['F-DATA-QUALITY-001'],
    mutate(plan) {
      const head = lmHead(plan);
      head.values = new Float32Array(head.values.length);
    },
  },
  {
    id: 'mutant:drop-last-layer',
    description: 'the last decoder block is not written (tensor count silently short)',
    grounding: 'paiml/realizar#44: 9 of 24 layers kept; paiml/aprender PR 2564',
    expected: ['F-LAYOUT-CONTRACT-006', 'F-RUNTIME-002'],
    mutate(plan, ckpt) {
      const last = `blk.${commonDims(ckpt.config).layers - 1}.`;
      plan.tensors = plan.tensors.filter((t) => !t.name.startsWith(last));
    },
  },
  {
    id: 'mutant:ffn-down-untransposed',
    description: 'ffn_down written with its two dimensions swapped (data transposed to match)',
    grounding: 'paiml/aprender PR 1466: FFN untransposed, "values identical, shapes transposed"',
    expected: ['F-LAYOUT-CONTRACT-002'],
    mutate(plan) {
      const t = tensor(plan, 'blk.0.ffn_down.weight');
      const [rows, cols] = t.shape as [number, number];
      const out = new Float32Array(t.values.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.values[r * cols + c] as number;
      t.shape = [cols, rows];
      t.values = out;
    },
  },
  {
    id: 'mutant:bf16-bytes-as-f32',
    description: 'attn_v (gpt2: the fused attn_qkv) written as bf16 bytes (2 per element) but declared F32 with the full shape',
    grounding: 'paiml/aprender#369: BF16 fell into the F32 arm',
    expected: ['F-LAYOUT-CONTRACT-004'],
    mutate(plan) {
      const t = plan.tensors.some((x) => x.name === 'blk.0.attn_v.weight') ? tensor(plan, 'blk.0.attn_v.weight') : tensor(plan, 'blk.0.attn_qkv.weight');
      t.dtype = 'F32';
      t.data = quantize('BF16', t.values);
    },
  },
  {
    id: 'mutant:f16-overflow-norm',
    description: 'output_norm pre-scaled ×1e5 and cast to f16 without clamping: every value overflows to Inf',
    grounding: 'tensorflow/tensorflow#43719, ggml-org/llama.cpp#13722: f16 overflow → Inf → NaN',
    expected: ['F-DATA-QUALITY-002', 'F-LOGITS-001'],
    mutate(plan) {
      const t = tensor(plan, 'output_norm.weight');
      t.dtype = 'F16';
      t.values = t.values.map((v) => v * 1e5);
    },
  },
];

export function findMutant(id: string): Mutant | undefined {
  return MUTANTS.find((m) => m.id === id);
}
