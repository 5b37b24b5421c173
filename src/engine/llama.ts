/**
 * The LLaMA family in the bundled engine: `llama` (llama.cpp's conventions: Q/K permuted by the converter,
 * NORM RoPE) and `qwen2` (q/k/v biases, unpermuted Q/K, NEOX RoPE). RMSNorm, GQA, SwiGLU; tied or untied head.
 * From an HF-layout file (APR, safetensors) both run NEOX RoPE on the unpermuted weights (or what the
 * APR metadata's rope_type says), with hyperparameters from the APR metadata or config.json.
 */
import type { ByteSource } from '../formats/byte-source.js';
import type { MetaValue, ModelFile } from '../formats/types.js';
import { createMatVec, type MatVec } from './kernels.js';
import { attend, rmsNorm, rope, silu, type RopeType } from './ops.js';
import type { EngineModel, EngineOptions, EngineSession } from './types.js';
import {
  EngineError,
  GGUF_NAMES,
  jsonNumber,
  metaNumber,
  metaVocab,
  TensorTable,
  weightRow,
  type TensorNames,
  type Weight,
} from './weights.js';

export { EngineError } from './weights.js';

/** The `general.architecture` values this module runs. */
export const LLAMA_FAMILY = ['llama', 'qwen2'] as const;
export type LlamaFamilyArch = (typeof LLAMA_FAMILY)[number];

/** RoPE layout per arch, as llama.cpp's `llama_model_rope_type` assigns it. */
const ROPE_TYPE: Record<LlamaFamilyArch, RopeType> = { llama: 'norm', qwen2: 'neox' };

export interface LlamaHparams {
  arch: LlamaFamilyArch;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  eps: number;
  ropeBase: number;
  ropeType: RopeType;
  contextLength: number;
}

function isLlamaFamily(arch: unknown): arch is LlamaFamilyArch {
  return LLAMA_FAMILY.some((a) => a === arch);
}

export function llamaHparams(meta: Map<string, MetaValue>): LlamaHparams {
  const arch = meta.get('general.architecture');
  if (!isLlamaFamily(arch))
    throw new EngineError(`general.architecture is ${JSON.stringify(arch)}; this model class runs ${LLAMA_FAMILY.join(', ')}`);
  const p = `${arch}.`;
  const hidden = metaNumber(meta, `${p}embedding_length`);
  const heads = metaNumber(meta, `${p}attention.head_count`);
  const headDim = metaNumber(meta, `${p}attention.key_length`, hidden / heads);
  const ropeDims = metaNumber(meta, `${p}rope.dimension_count`, headDim);
  if (ropeDims !== headDim)
    throw new EngineError(`${p}rope.dimension_count ${ropeDims} ≠ head dim ${headDim}: partial RoPE is not supported`);
  return {
    arch,
    vocab: metaVocab(meta, arch),
    hidden,
    layers: metaNumber(meta, `${p}block_count`),
    heads,
    kvHeads: metaNumber(meta, `${p}attention.head_count_kv`, heads),
    headDim,
    ffn: metaNumber(meta, `${p}feed_forward_length`),
    eps: metaNumber(meta, `${p}attention.layer_norm_rms_epsilon`),
    ropeBase: metaNumber(meta, `${p}rope.freq_base`, 10000),
    ropeType: ROPE_TYPE[arch],
    contextLength: metaNumber(meta, `${p}context_length`, 2048),
  };
}

/** APR `rope_type` codes (realizar): 0 = NORM, 2 = NEOX. */
const APR_ROPE_TYPES: Readonly<Record<number, RopeType>> = { 0: 'norm', 2: 'neox' };

/**
 * Hyperparameters of an HF-layout file: from APR v2 metadata (aprender's `AprV2Metadata` fields, with
 * the HF spellings realizar also accepts) or from the source checkpoint's config.json. The weights are
 * unpermuted, so RoPE is NEOX unless the APR metadata declares another rope_type (a converter that
 * declares NORM for HF-layout weights is wrong, and the logits will say so).
 */
export function llamaHparamsFromJson(obj: Record<string, unknown>): LlamaHparams {
  const archRaw = obj['architecture'] ?? obj['model_type'];
  const arch = typeof archRaw === 'string' ? archRaw.toLowerCase() : archRaw;
  if (!isLlamaFamily(arch))
    throw new EngineError(`architecture is ${JSON.stringify(archRaw)}; this model class runs ${LLAMA_FAMILY.join(', ')}`);
  const hidden = jsonNumber(obj, ['hidden_size']);
  const heads = jsonNumber(obj, ['num_heads', 'num_attention_heads']);
  const headDim = jsonNumber(obj, ['head_dim'], hidden / heads);
  const ropeCode = obj['rope_type'];
  let ropeType: RopeType = 'neox';
  if (ropeCode !== undefined && ropeCode !== null) {
    const t = typeof ropeCode === 'number' ? APR_ROPE_TYPES[ropeCode] : undefined;
    if (t === undefined) throw new EngineError(`rope_type ${JSON.stringify(ropeCode)} is neither 0 (NORM) nor 2 (NEOX)`);
    ropeType = t;
  }
  return {
    arch,
    vocab: jsonNumber(obj, ['vocab_size']),
    hidden,
    layers: jsonNumber(obj, ['num_layers', 'num_hidden_layers']),
    heads,
    kvHeads: jsonNumber(obj, ['num_kv_heads', 'num_key_value_heads'], heads),
    headDim,
    ffn: jsonNumber(obj, ['intermediate_size']),
    eps: jsonNumber(obj, ['rms_norm_eps']),
    ropeBase: jsonNumber(obj, ['rope_theta'], 10000),
    ropeType,
    contextLength: jsonNumber(obj, ['max_position_embeddings'], 2048),
  };
}

/** How to read a non-GGUF file: its hyperparameters and tensor names. */
export interface ModelView<H> {
  hparams: H;
  names: TensorNames;
}

interface Layer {
  attnNorm: Float32Array;
  q: Weight;
  k: Weight;
  v: Weight;
  qBias: Float32Array | undefined;
  kBias: Float32Array | undefined;
  vBias: Float32Array | undefined;
  o: Weight;
  oBias: Float32Array | undefined;
  ffnNorm: Float32Array;
  gate: Weight;
  up: Weight;
  down: Weight;
}

/** A llama or qwen2 model loaded from a GGUF tensor table. */
export class LlamaModel implements EngineModel {
  readonly hp: LlamaHparams;
  readonly arch: LlamaFamilyArch;
  private readonly embd: Weight;
  private readonly output: Weight;
  private readonly outputNorm: Float32Array;
  private readonly layers: Layer[] = [];
  /** The matrix-vector products (WASM SIMD by default; the TS reference on request). */
  readonly mv: MatVec;

  constructor(file: ModelFile, src: ByteSource, view?: ModelView<LlamaHparams>, options: EngineOptions = {}) {
    const mv = createMatVec(options.kernels, options.threads);
    this.mv = mv;
    // Every 2-D weight goes to the kernels as it is read (WASM: into the model's arena, once).
    const table = new TensorTable(file, src, view?.names ?? GGUF_NAMES, (w) => mv.prepare(w));
    this.hp = view?.hparams ?? llamaHparams(file.metadata);
    this.arch = this.hp.arch;
    const hp = this.hp;
    const q = hp.heads * hp.headDim;
    const kv = hp.kvHeads * hp.headDim;
    // llama.cpp: qwen2 requires bq/bk/bv; llama loads them (and bo) when present (attention_bias).
    const isQwen2 = hp.arch === 'qwen2';
    const bias = (name: string, n: number) => (isQwen2 ? table.vector(name, n) : table.optionalVector(name, n));
    this.embd = table.weight('token_embd.weight', hp.vocab, hp.hidden);
    // llama.cpp: `output` is optional; a tied model reuses token_embd.
    this.output = table.has('output.weight') ? table.weight('output.weight', hp.vocab, hp.hidden) : this.embd;
    this.outputNorm = table.vector('output_norm.weight', hp.hidden);
    for (let i = 0; i < hp.layers; i++) {
      const b = `blk.${i}.`;
      this.layers.push({
        attnNorm: table.vector(`${b}attn_norm.weight`, hp.hidden),
        q: table.weight(`${b}attn_q.weight`, q, hp.hidden),
        k: table.weight(`${b}attn_k.weight`, kv, hp.hidden),
        v: table.weight(`${b}attn_v.weight`, kv, hp.hidden),
        qBias: bias(`${b}attn_q.bias`, q),
        kBias: bias(`${b}attn_k.bias`, kv),
        vBias: bias(`${b}attn_v.bias`, kv),
        o: table.weight(`${b}attn_output.weight`, hp.hidden, q),
        oBias: isQwen2 ? undefined : table.optionalVector(`${b}attn_output.bias`, hp.hidden),
        ffnNorm: table.vector(`${b}ffn_norm.weight`, hp.hidden),
        gate: table.weight(`${b}ffn_gate.weight`, hp.ffn, hp.hidden),
        up: table.weight(`${b}ffn_up.weight`, hp.ffn, hp.hidden),
        down: table.weight(`${b}ffn_down.weight`, hp.hidden, hp.ffn),
      });
    }
  }

  session(maxTokens: number, captureLayers = false): LlamaSession {
    return new LlamaSession(
      { hp: this.hp, layers: this.layers, embd: this.embd, output: this.output, outputNorm: this.outputNorm, mv: this.mv },
      maxTokens,
      captureLayers,
    );
  }
}

interface LlamaWeights {
  hp: LlamaHparams;
  layers: Layer[];
  embd: Weight;
  output: Weight;
  outputNorm: Float32Array;
  mv: MatVec;
}

/** One decoding stream with a KV cache. `step(token)` returns the next-token logits. */
export class LlamaSession implements EngineSession {
  private pos = 0;
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];
  readonly layerOutputs: Float32Array[][] = [];
  // Per-step buffers, allocated once per session.
  private readonly xn: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly attn: Float32Array;
  private readonly proj: Float32Array;
  private readonly g: Float32Array;
  private readonly u: Float32Array;

  constructor(
    private readonly w: LlamaWeights,
    private readonly maxTokens: number,
    private readonly captureLayers: boolean,
  ) {
    const hp = w.hp;
    const kv = hp.kvHeads * hp.headDim;
    this.kCache = w.layers.map(() => new Float32Array(maxTokens * kv));
    this.vCache = w.layers.map(() => new Float32Array(maxTokens * kv));
    if (captureLayers) for (let i = 0; i < hp.layers; i++) this.layerOutputs.push([]);
    this.xn = new Float32Array(hp.hidden);
    this.q = new Float32Array(hp.heads * hp.headDim);
    this.k = new Float32Array(kv);
    this.v = new Float32Array(kv);
    this.attn = new Float32Array(hp.heads * hp.headDim);
    this.proj = new Float32Array(hp.hidden);
    this.g = new Float32Array(hp.ffn);
    this.u = new Float32Array(hp.ffn);
  }

  get position(): number {
    return this.pos;
  }

  fork(maxTokens: number): LlamaSession {
    if (maxTokens < this.pos) throw new EngineError(`a fork of ${maxTokens} tokens cannot hold the ${this.pos} already read`);
    const f = new LlamaSession(this.w, maxTokens, false);
    const n = this.pos * this.w.hp.kvHeads * this.w.hp.headDim;
    this.kCache.forEach((c, l) => f.kCache[l]?.set(c.subarray(0, n)));
    this.vCache.forEach((c, l) => f.vCache[l]?.set(c.subarray(0, n)));
    f.pos = this.pos;
    return f;
  }

  step(token: number): Float32Array {
    const { hp, mv } = this.w;
    if (this.pos >= this.maxTokens) throw new EngineError(`sequence longer than the session's ${this.maxTokens} tokens`);
    if (!Number.isInteger(token) || token < 0 || token >= hp.vocab) throw new EngineError(`token id ${token} outside vocab ${hp.vocab}`);
    const { hidden, heads, kvHeads, headDim: hd, ffn } = hp;
    const { xn, q, k, v, attn, proj, g, u } = this;
    const x = weightRow(this.w.embd, token);
    for (let l = 0; l < this.w.layers.length; l++) {
      const L = this.w.layers[l] as Layer; // l < layers.length
      rmsNorm(x, L.attnNorm, hp.eps, xn);
      mv.run(xn, [
        { w: L.q, out: q, bias: L.qBias },
        { w: L.k, out: k, bias: L.kBias },
        { w: L.v, out: v, bias: L.vBias },
      ]);
      rope(hp.ropeType, q, heads, hd, this.pos, hp.ropeBase);
      rope(hp.ropeType, k, kvHeads, hd, this.pos, hp.ropeBase);
      const kc = this.kCache[l] as Float32Array; // one K and one V cache per layer
      const vc = this.vCache[l] as Float32Array;
      kc.set(k, this.pos * kvHeads * hd);
      vc.set(v, this.pos * kvHeads * hd);
      attend(q, kc, vc, this.pos, heads, kvHeads, hd, attn);
      mv.run(attn, [{ w: L.o, out: proj, bias: L.oBias }]);
      for (let i = 0; i < hidden; i++) x[i] = (x[i] as number) + (proj[i] as number);
      rmsNorm(x, L.ffnNorm, hp.eps, xn);
      mv.run(xn, [
        { w: L.gate, out: g },
        { w: L.up, out: u },
      ]);
      for (let i = 0; i < ffn; i++) g[i] = silu(g[i] as number) * (u[i] as number);
      mv.run(g, [{ w: L.down, out: proj }]);
      for (let i = 0; i < hidden; i++) x[i] = (x[i] as number) + (proj[i] as number);
      if (this.captureLayers) this.layerOutputs[l]?.push(x.slice());
    }
    rmsNorm(x, this.w.outputNorm, hp.eps, xn);
    const logits = new Float32Array(hp.vocab);
    mv.run(xn, [{ w: this.w.output, out: logits }]);
    this.pos++;
    return logits;
  }
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}
