/**
 * Heavy-tailed variants of trained zoo models. Real LLM weights are not Gaussian: a few entries are many
 * times the tensor's RMS, and some input channels are large across every row (the "outlier features" that
 * LLM.int8() and AWQ are about). Both break block quantizers in ways the zoo's smooth trained weights never
 * show: one large value sets a block's scale and the other 31 entries lose precision.
 *
 * Two seeded edits of a trained checkpoint:
 * - entry outliers: a fraction of every linear weight's entries multiplied by a factor in [min, max]
 *   (sign kept). This changes the function slightly; the peakedness contract checks it stays a good model.
 * - outlier channels: whole input channels of linear weights multiplied by s; with `compensate`, the tensor
 *   that produces that channel (the norm gain, v_proj's row, up_proj's row) is divided by s, so the model
 *   computes the same function in exact arithmetic — only its weights' distribution changes.
 */
import { Prng, seedFor } from './prng.js';
import { commonDims, hasQkvBias, isGpt2, type Checkpoint, type CheckpointTensor, type Gpt2HfConfig, type LlamaHfConfig } from './types.js';

/** Bump when `heavyTailed` changes what it writes, so cached derived checkpoints are rebuilt. */
export const HEAVY_TAIL_VERSION = 1;

/** How a heavy-tailed variant is derived (the `heavyTail` object of a derived spec in models/). */
export interface HeavyTailRecipe {
  seed: number;
  /** Fraction of each linear weight's entries made outliers (real LLMs: ~0.1–0.5 %). */
  entryFraction: number;
  /** Outlier entries are multiplied by a factor drawn uniformly from [min, max]. */
  entryScale: [number, number];
  /** Outlier input channels per channel group and layer. */
  channels: number;
  /** An outlier channel is multiplied by a factor drawn uniformly from [min, max]. */
  channelScale: [number, number];
  /**
   * Divide the channel's producer (norm gain and bias, v_proj / up_proj row) by the same factor, keeping the
   * function. Groups whose producer is not linear (GPT-2's mlp.c_proj, fed by gelu) are then left alone.
   */
  compensate: boolean;
}

/** One slice of a tensor: a row (dim 0), a column (dim 1) or an element of a vector. */
interface Slice {
  tensor: string;
  axis: 'row' | 'col';
  index: number;
}

/** A family of interchangeable channels: scaling channel j multiplies `consumers(j)` and divides `producers(j)`. */
interface ChannelGroup {
  label: string;
  width: number;
  consumers: (j: number) => Slice[];
  /** Undefined when no linear producer exists (the channel cannot be compensated). */
  producers: ((j: number) => Slice[]) | undefined;
  /** Residual-stream channels: the same indices in every layer, as real models' outlier dimensions are. */
  isResidual: boolean;
}

const row = (tensor: string, index: number): Slice => ({ tensor, axis: 'row', index });
const col = (tensor: string, index: number): Slice => ({ tensor, axis: 'col', index });

function llamaGroups(config: LlamaHfConfig, layer: number): ChannelGroup[] {
  const d = commonDims(config);
  const p = `model.layers.${layer}`;
  const attn = (n: string) => `${p}.self_attn.${n}`;
  const mlp = (n: string) => `${p}.mlp.${n}`;
  const groupSize = d.heads / d.kvHeads;
  return [
    {
      label: 'attn_in',
      width: d.hidden,
      isResidual: true,
      consumers: (j) => ['q_proj', 'k_proj', 'v_proj'].map((n) => col(attn(`${n}.weight`), j)),
      producers: (j) => [row(`${p}.input_layernorm.weight`, j)],
    },
    {
      label: 'mlp_in',
      width: d.hidden,
      isResidual: true,
      consumers: (j) => [col(mlp('gate_proj.weight'), j), col(mlp('up_proj.weight'), j)],
      producers: (j) => [row(`${p}.post_attention_layernorm.weight`, j)],
    },
    {
      // o_proj reads v channel c through every query head of c's kv head (GQA): all those columns scale together.
      label: 'attn_out',
      width: d.kvHeads * d.headDim,
      isResidual: false,
      consumers: (c) => {
        const kvHead = Math.floor(c / d.headDim);
        const heads = Array.from({ length: groupSize }, (_, g) => kvHead * groupSize + g);
        return heads.map((h) => col(attn('o_proj.weight'), h * d.headDim + (c % d.headDim)));
      },
      producers: (c) => [row(attn('v_proj.weight'), c), ...(hasQkvBias(config) ? [row(attn('v_proj.bias'), c)] : [])],
    },
    {
      // silu(gate) · up is linear in up: down_proj's input channel j is produced by up_proj's row j.
      label: 'mlp_out',
      width: d.ffn,
      isResidual: false,
      consumers: (j) => [col(mlp('down_proj.weight'), j)],
      producers: (j) => [row(mlp('up_proj.weight'), j)],
    },
  ];
}

/** GPT-2's Conv1D weights are [in, out]: an input channel is a row, an output channel a column. */
function gpt2Groups(config: Gpt2HfConfig, layer: number): ChannelGroup[] {
  const d = commonDims(config);
  const p = `h.${layer}`;
  return [
    {
      label: 'attn_in',
      width: d.hidden,
      isResidual: true,
      consumers: (j) => [row(`${p}.attn.c_attn.weight`, j)],
      producers: (j) => [row(`${p}.ln_1.weight`, j), row(`${p}.ln_1.bias`, j)],
    },
    {
      label: 'mlp_in',
      width: d.hidden,
      isResidual: true,
      consumers: (j) => [row(`${p}.mlp.c_fc.weight`, j)],
      producers: (j) => [row(`${p}.ln_2.weight`, j), row(`${p}.ln_2.bias`, j)],
    },
    {
      // c_attn's output columns are [q | k | v]; attention output channel j is a mix of v channel j only.
      label: 'attn_out',
      width: d.hidden,
      isResidual: false,
      consumers: (j) => [row(`${p}.attn.c_proj.weight`, j)],
      producers: (j) => [col(`${p}.attn.c_attn.weight`, 2 * d.hidden + j), row(`${p}.attn.c_attn.bias`, 2 * d.hidden + j)],
    },
    {
      label: 'mlp_out',
      width: d.ffn,
      isResidual: false,
      consumers: (j) => [row(`${p}.mlp.c_proj.weight`, j)],
      producers: undefined,
    },
  ];
}

function scaleSlice(t: CheckpointTensor, s: Slice, factor: number): void {
  if (t.shape.length === 1) {
    t.data[s.index] = (t.data[s.index] as number) * factor;
    return;
  }
  const [rows, cols] = t.shape as [number, number]; // not 1-D (returned above): a 2-D matrix
  if (s.axis === 'row') {
    for (let c = 0; c < cols; c++) t.data[s.index * cols + c] = (t.data[s.index * cols + c] as number) * factor;
  } else {
    for (let r = 0; r < rows; r++) t.data[r * cols + s.index] = (t.data[r * cols + s.index] as number) * factor;
  }
}

/** The 2-D weights of the transformer blocks (embeddings, and with them the tied head, keep their distribution). */
export function linearWeightNames(ckpt: Checkpoint): string[] {
  const embeddings = new Set(['model.embed_tokens.weight', 'lm_head.weight', 'wte.weight', 'wpe.weight']);
  return [...ckpt.tensors].filter(([n, t]) => t.shape.length === 2 && !embeddings.has(n)).map(([n]) => n);
}

/** `count` distinct indices in [0, width), drawn from `rng`. */
function pick(rng: Prng, width: number, count: number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, width)) chosen.add(Math.floor(rng.uniform() * width));
  return [...chosen].sort((a, b) => a - b);
}

const between = (rng: Prng, [lo, hi]: [number, number]) => lo + (hi - lo) * rng.uniform();

/** What was changed, for the spec's description and the tests. */
export interface HeavyTailEdits {
  entryOutliers: number;
  /** Per layer and group label, the channels scaled and their factors. */
  channels: { layer: number; group: string; index: number; factor: number; compensated: boolean }[];
}

/** A heavy-tailed copy of `ckpt` (the input is not modified). Deterministic in `recipe`. */
export function heavyTailed(ckpt: Checkpoint, recipe: HeavyTailRecipe): { checkpoint: Checkpoint; edits: HeavyTailEdits } {
  const copy = (t: CheckpointTensor): CheckpointTensor => ({ shape: [...t.shape], data: Float32Array.from(t.data) });
  const tensors = new Map<string, CheckpointTensor>([...ckpt.tensors].map(([n, t]) => [n, copy(t)]));
  const get = (name: string): CheckpointTensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`heavy-tail recipe: the checkpoint has no tensor '${name}'`);
    return t;
  };
  const edits: HeavyTailEdits = { entryOutliers: 0, channels: [] };

  for (const name of linearWeightNames(ckpt)) {
    const t = get(name);
    const rng = new Prng(seedFor(recipe.seed, `entries:${name}`));
    const count = Math.round(recipe.entryFraction * t.data.length);
    for (const i of pick(rng, t.data.length, count)) t.data[i] = (t.data[i] as number) * between(rng, recipe.entryScale);
    edits.entryOutliers += count;
  }

  const { layers } = commonDims(ckpt.config);
  const config = ckpt.config;
  for (let layer = 0; layer < layers; layer++) {
    const groups = isGpt2(config) ? gpt2Groups(config, layer) : llamaGroups(config, layer);
    for (const g of groups) {
      if (recipe.compensate && g.producers === undefined) continue;
      const where = new Prng(seedFor(recipe.seed, g.isResidual ? 'channels:residual' : `channels:${layer}:${g.label}`));
      const how = new Prng(seedFor(recipe.seed, `factors:${layer}:${g.label}`));
      for (const j of pick(where, g.width, recipe.channels)) {
        const factor = between(how, recipe.channelScale);
        for (const s of g.consumers(j)) scaleSlice(get(s.tensor), s, factor);
        const compensated = recipe.compensate && g.producers !== undefined;
        if (compensated) for (const s of g.producers?.(j) ?? []) scaleSlice(get(s.tensor), s, 1 / factor);
        edits.channels.push({ layer, group: g.label, index: j, factor, compensated });
      }
    }
  }
  return { checkpoint: { config: ckpt.config, tensors }, edits };
}

/** Tail statistics of one tensor: excess-free kurtosis (a Gaussian gives 3) and max |x| over RMS. */
export function tailStats(data: Float32Array): { kurtosis: number; maxOverRms: number } {
  let mean = 0;
  for (const v of data) mean += v;
  mean /= data.length;
  let m2 = 0;
  let m4 = 0;
  let sq = 0;
  let max = 0;
  for (const v of data) {
    const c = v - mean;
    m2 += c * c;
    m4 += c * c * c * c;
    sq += v * v;
    max = Math.max(max, Math.abs(v));
  }
  m2 /= data.length;
  m4 /= data.length;
  return { kurtosis: m4 / (m2 * m2), maxOverRms: max / Math.sqrt(sq / data.length) };
}
