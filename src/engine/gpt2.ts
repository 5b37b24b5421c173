/**
 * GPT-2 in the bundled engine, as llama.cpp's `src/models/gpt2.cpp` builds it: token + learned position
 * embeddings, pre-LN blocks (LayerNorm with bias), fused qkv projection split q|k|v, biases on every
 * projection, gelu_new MLP, final LayerNorm, head tied to token_embd unless `output.weight` exists.
 */
import type { ByteSource } from '../formats/byte-source.js';
import type { MetaValue, ModelFile } from '../formats/types.js';
import { createMatVec, type MatVec } from './kernels.js';
import { attend, geluNew, layerNorm } from './ops.js';
import type { EngineModel, EngineOptions, EngineSession } from './types.js';
import type { ModelView } from './llama.js';
import { EngineError, GGUF_NAMES, jsonNumber, metaNumber, metaVocab, TensorTable, weightRow, type Weight } from './weights.js';

export interface Gpt2Hparams {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  ffn: number;
  eps: number;
  /** Rows of position_embd: the longest sequence the model can run. */
  contextLength: number;
}

export function gpt2Hparams(meta: Map<string, MetaValue>): Gpt2Hparams {
  const arch = meta.get('general.architecture');
  if (arch !== 'gpt2') throw new EngineError(`general.architecture is ${JSON.stringify(arch)}; this model class runs gpt2`);
  const hidden = metaNumber(meta, 'gpt2.embedding_length');
  const heads = metaNumber(meta, 'gpt2.attention.head_count');
  if (!Number.isInteger(hidden / heads)) throw new EngineError(`gpt2.embedding_length ${hidden} is not a multiple of head_count ${heads}`);
  return {
    vocab: metaVocab(meta, 'gpt2'),
    hidden,
    layers: metaNumber(meta, 'gpt2.block_count'),
    heads,
    headDim: hidden / heads,
    ffn: metaNumber(meta, 'gpt2.feed_forward_length'),
    eps: metaNumber(meta, 'gpt2.attention.layer_norm_epsilon'),
    contextLength: metaNumber(meta, 'gpt2.context_length'),
  };
}

/**
 * Hyperparameters of an HF-layout GPT-2 (APR metadata or config.json): aprender's `hidden_size`,
 * `num_layers`, …, `rms_norm_eps` (its one layer-norm epsilon field), or HF's `n_embd`, `n_layer`, ….
 */
export function gpt2HparamsFromJson(obj: Record<string, unknown>): Gpt2Hparams {
  const archRaw = obj['architecture'] ?? obj['model_type'];
  if (typeof archRaw !== 'string' || archRaw.toLowerCase() !== 'gpt2')
    throw new EngineError(`architecture is ${JSON.stringify(archRaw)}; this model class runs gpt2`);
  const hidden = jsonNumber(obj, ['hidden_size', 'n_embd']);
  const heads = jsonNumber(obj, ['num_heads', 'n_head']);
  if (!Number.isInteger(hidden / heads)) throw new EngineError(`hidden size ${hidden} is not a multiple of the head count ${heads}`);
  return {
    vocab: jsonNumber(obj, ['vocab_size']),
    hidden,
    layers: jsonNumber(obj, ['num_layers', 'n_layer']),
    heads,
    headDim: hidden / heads,
    ffn: jsonNumber(obj, ['intermediate_size', 'n_inner'], 4 * hidden),
    eps: jsonNumber(obj, ['rms_norm_eps', 'layer_norm_epsilon']),
    contextLength: jsonNumber(obj, ['max_position_embeddings', 'n_positions']),
  };
}

interface Gpt2Layer {
  attnNorm: Float32Array;
  attnNormBias: Float32Array;
  qkv: Weight;
  qkvBias: Float32Array;
  o: Weight;
  oBias: Float32Array;
  ffnNorm: Float32Array;
  ffnNormBias: Float32Array;
  up: Weight;
  upBias: Float32Array;
  down: Weight;
  downBias: Float32Array;
}

interface Gpt2Weights {
  embd: Weight;
  posEmbd: Weight;
  output: Weight;
  outputNorm: Float32Array;
  outputNormBias: Float32Array;
  layers: Gpt2Layer[];
  mv: MatVec;
}

export class Gpt2Model implements EngineModel {
  readonly arch = 'gpt2';
  readonly hp: Gpt2Hparams;
  private readonly w: Gpt2Weights;

  constructor(file: ModelFile, src: ByteSource, view?: ModelView<Gpt2Hparams>, options: EngineOptions = {}) {
    const mv = createMatVec(options.kernels, options.threads);
    // Every 2-D weight goes to the kernels as it is read (WASM: into the model's arena, once).
    const table = new TensorTable(file, src, view?.names ?? GGUF_NAMES, (w) => mv.prepare(w));
    this.hp = view?.hparams ?? gpt2Hparams(file.metadata);
    const { vocab, hidden: h, ffn, layers, contextLength } = this.hp;
    const embd = table.weight('token_embd.weight', vocab, h);
    const layerWeights: Gpt2Layer[] = [];
    for (let i = 0; i < layers; i++) {
      const b = `blk.${i}.`;
      // llama.cpp loads every GPT-2 bias as required; the fused qkv weight is [3·n_embd, n_embd] (torch order)
      // in GGUF, HF's Conv1D [n_embd, 3·n_embd] in APR/safetensors (TensorTable handles both).
      layerWeights.push({
        attnNorm: table.vector(`${b}attn_norm.weight`, h),
        attnNormBias: table.vector(`${b}attn_norm.bias`, h),
        qkv: table.weight(`${b}attn_qkv.weight`, 3 * h, h),
        qkvBias: table.vector(`${b}attn_qkv.bias`, 3 * h),
        o: table.weight(`${b}attn_output.weight`, h, h),
        oBias: table.vector(`${b}attn_output.bias`, h),
        ffnNorm: table.vector(`${b}ffn_norm.weight`, h),
        ffnNormBias: table.vector(`${b}ffn_norm.bias`, h),
        up: table.weight(`${b}ffn_up.weight`, ffn, h),
        upBias: table.vector(`${b}ffn_up.bias`, ffn),
        down: table.weight(`${b}ffn_down.weight`, h, ffn),
        downBias: table.vector(`${b}ffn_down.bias`, h),
      });
    }
    this.w = {
      embd,
      posEmbd: table.weight('position_embd.weight', contextLength, h),
      // llama.cpp (gpt2): `output` is TENSOR_NOT_REQUIRED and falls back to token_embd (tied).
      output: table.has('output.weight') ? table.weight('output.weight', vocab, h) : embd,
      outputNorm: table.vector('output_norm.weight', h),
      outputNormBias: table.vector('output_norm.bias', h),
      layers: layerWeights,
      mv,
    };
  }

  session(maxTokens: number, captureLayers = false): Gpt2Session {
    if (maxTokens > this.hp.contextLength)
      throw new EngineError(`a session of ${maxTokens} tokens exceeds the ${this.hp.contextLength} learned positions`);
    return new Gpt2Session(this.hp, this.w, maxTokens, captureLayers);
  }
}

export class Gpt2Session implements EngineSession {
  private pos = 0;
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];
  readonly layerOutputs: Float32Array[][] = [];
  // Per-step buffers, allocated once per session.
  private readonly xn: Float32Array;
  private readonly qkv: Float32Array;
  private readonly attn: Float32Array;
  private readonly proj: Float32Array;
  private readonly up: Float32Array;

  constructor(
    private readonly hp: Gpt2Hparams,
    private readonly w: Gpt2Weights,
    private readonly maxTokens: number,
    private readonly captureLayers: boolean,
  ) {
    this.kCache = w.layers.map(() => new Float32Array(maxTokens * hp.hidden));
    this.vCache = w.layers.map(() => new Float32Array(maxTokens * hp.hidden));
    if (captureLayers) for (let i = 0; i < hp.layers; i++) this.layerOutputs.push([]);
    this.xn = new Float32Array(hp.hidden);
    this.qkv = new Float32Array(3 * hp.hidden);
    this.attn = new Float32Array(hp.hidden);
    this.proj = new Float32Array(hp.hidden);
    this.up = new Float32Array(hp.ffn);
  }

  get position(): number {
    return this.pos;
  }

  fork(maxTokens: number): Gpt2Session {
    if (maxTokens < this.pos) throw new EngineError(`a fork of ${maxTokens} tokens cannot hold the ${this.pos} already read`);
    if (maxTokens > this.hp.contextLength)
      throw new EngineError(`a session of ${maxTokens} tokens exceeds the ${this.hp.contextLength} learned positions`);
    const f = new Gpt2Session(this.hp, this.w, maxTokens, false);
    const n = this.pos * this.hp.hidden;
    this.kCache.forEach((c, l) => f.kCache[l]?.set(c.subarray(0, n)));
    this.vCache.forEach((c, l) => f.vCache[l]?.set(c.subarray(0, n)));
    f.pos = this.pos;
    return f;
  }

  step(token: number): Float32Array {
    const { hp, w } = this;
    if (this.pos >= this.maxTokens) throw new EngineError(`sequence longer than the session's ${this.maxTokens} tokens`);
    if (!Number.isInteger(token) || token < 0 || token >= hp.vocab) throw new EngineError(`token id ${token} outside vocab ${hp.vocab}`);
    const { hidden: h, heads, headDim: hd, ffn } = hp;
    const { xn, qkv, attn, proj, up } = this;
    const mv = w.mv;
    const x = weightRow(w.embd, token);
    const pe = weightRow(w.posEmbd, this.pos);
    for (let i = 0; i < h; i++) x[i] = (x[i] as number) + (pe[i] as number);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l] as Gpt2Layer; // l < layers.length
      layerNorm(x, L.attnNorm, L.attnNormBias, hp.eps, xn);
      mv.run(xn, [{ w: L.qkv, out: qkv, bias: L.qkvBias }]);
      // The fused output splits q | k | v (n_embd each), then heads of hd: HF's `split(n_embd, dim=2)`.
      const q = qkv.subarray(0, h);
      const kc = this.kCache[l] as Float32Array; // one K and one V cache per layer
      const vc = this.vCache[l] as Float32Array;
      kc.set(qkv.subarray(h, 2 * h), this.pos * h);
      vc.set(qkv.subarray(2 * h, 3 * h), this.pos * h);
      attend(q, kc, vc, this.pos, heads, heads, hd, attn);
      mv.run(attn, [{ w: L.o, out: proj, bias: L.oBias }]);
      for (let i = 0; i < h; i++) x[i] = (x[i] as number) + (proj[i] as number);
      layerNorm(x, L.ffnNorm, L.ffnNormBias, hp.eps, xn);
      mv.run(xn, [{ w: L.up, out: up, bias: L.upBias }]);
      for (let i = 0; i < ffn; i++) up[i] = geluNew(up[i] as number);
      mv.run(up, [{ w: L.down, out: proj, bias: L.downBias }]);
      for (let i = 0; i < h; i++) x[i] = (x[i] as number) + (proj[i] as number);
      if (this.captureLayers) this.layerOutputs[l]?.push(x.slice());
    }
    layerNorm(x, w.outputNorm, w.outputNormBias, hp.eps, xn);
    const logits = new Float32Array(hp.vocab);
    mv.run(xn, [{ w: w.output, out: logits }]);
    this.pos++;
    return logits;
  }
}
