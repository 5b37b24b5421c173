import { dotQ8Activations, Q8_ACTIVATION_TYPES, quantizeActivationsQ8 } from './activations.js';
import type { ByteSource } from '../formats/byte-source.js';
import { dequantize, dotRow, TYPE_INFO } from '../formats/codecs/index.js';
import { readTensorBytes } from '../formats/gguf/reader.js';
import type { DType, MetaValue, ModelFile } from '../formats/types.js';

/** The engine could not load or run a model (→ F-RUNTIME-002). */
export class EngineError extends Error {
  override readonly name = 'EngineError';
}

export interface LlamaHparams {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  eps: number;
  ropeBase: number;
  contextLength: number;
}

/** A weight as stored: the engine computes from the stored blocks, row by row, never a whole-model f32 copy. */
interface Weight {
  dtype: DType;
  rows: number;
  cols: number;
  rowBytes: number;
  bytes: Uint8Array;
}

function metaNumber(meta: Map<string, MetaValue>, key: string, fallback?: number): number {
  const v = meta.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (fallback !== undefined) return fallback;
  throw new EngineError(`metadata key ${key} is missing or not a number`);
}

export function llamaHparams(meta: Map<string, MetaValue>): LlamaHparams {
  const arch = meta.get('general.architecture');
  if (arch !== 'llama') throw new EngineError(`general.architecture is ${JSON.stringify(arch)}; the bundled engine runs 'llama' here`);
  const p = 'llama.';
  const hidden = metaNumber(meta, `${p}embedding_length`);
  const heads = metaNumber(meta, `${p}attention.head_count`);
  const tokens = meta.get('tokenizer.ggml.tokens');
  return {
    vocab: metaNumber(meta, `${p}vocab_size`, Array.isArray(tokens) ? tokens.length : undefined),
    hidden,
    layers: metaNumber(meta, `${p}block_count`),
    heads,
    kvHeads: metaNumber(meta, `${p}attention.head_count_kv`, heads),
    headDim: metaNumber(meta, `${p}attention.key_length`, hidden / heads),
    ffn: metaNumber(meta, `${p}feed_forward_length`),
    eps: metaNumber(meta, `${p}attention.layer_norm_rms_epsilon`),
    ropeBase: metaNumber(meta, `${p}rope.freq_base`, 10000),
    contextLength: metaNumber(meta, `${p}context_length`, 2048),
  };
}

interface Layer {
  attnNorm: Float32Array;
  q: Weight;
  k: Weight;
  v: Weight;
  o: Weight;
  ffnNorm: Float32Array;
  gate: Weight;
  up: Weight;
  down: Weight;
}

/** A llama-architecture model loaded from a GGUF tensor table (llama.cpp conventions: permuted Q/K, NORM RoPE). */
export class LlamaModel {
  readonly hp: LlamaHparams;
  private readonly embd: Weight;
  private readonly output: Weight;
  private readonly outputNorm: Float32Array;
  private readonly layers: Layer[] = [];

  constructor(file: ModelFile, src: ByteSource) {
    const fatal = file.issues.find((i) => i.fatal);
    if (fatal) throw new EngineError(`file is unreadable: ${fatal.code} ${fatal.message}`);
    this.hp = llamaHparams(file.metadata);
    const hp = this.hp;
    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    const flagged = new Set(file.issues.filter((i) => i.tensor !== undefined).map((i) => i.tensor));
    const weight = (name: string, rows: number, cols: number): Weight => {
      const t = byName.get(name);
      if (!t) throw new EngineError(`tensor ${name} is missing`);
      if (flagged.has(name)) throw new EngineError(`tensor ${name} is malformed`);
      const [r, c] = t.shape.length === 2 ? (t.shape as [number, number]) : [-1, -1];
      if (r !== rows || c !== cols) throw new EngineError(`tensor ${name} has shape [${t.shape.join(', ')}], the engine needs [${rows}, ${cols}]`);
      const info = TYPE_INFO[t.dtype];
      return { dtype: t.dtype, rows, cols, rowBytes: (cols / info.blockSize) * info.typeSize, bytes: readTensorBytes(src, t) };
    };
    const vector = (name: string, n: number): Float32Array => {
      const t = byName.get(name);
      if (!t) throw new EngineError(`tensor ${name} is missing`);
      if (flagged.has(name)) throw new EngineError(`tensor ${name} is malformed`);
      if (t.shape.length !== 1 || t.shape[0] !== n) throw new EngineError(`tensor ${name} has shape [${t.shape.join(', ')}], the engine needs [${n}]`);
      return dequantize(t.dtype, readTensorBytes(src, t), n);
    };
    const q = hp.heads * hp.headDim;
    const kv = hp.kvHeads * hp.headDim;
    this.embd = weight('token_embd.weight', hp.vocab, hp.hidden);
    // llama.cpp: `output` is optional; a tied model reuses token_embd.
    this.output = byName.has('output.weight') ? weight('output.weight', hp.vocab, hp.hidden) : this.embd;
    this.outputNorm = vector('output_norm.weight', hp.hidden);
    for (let i = 0; i < hp.layers; i++) {
      const b = `blk.${i}.`;
      this.layers.push({
        attnNorm: vector(`${b}attn_norm.weight`, hp.hidden),
        q: weight(`${b}attn_q.weight`, q, hp.hidden),
        k: weight(`${b}attn_k.weight`, kv, hp.hidden),
        v: weight(`${b}attn_v.weight`, kv, hp.hidden),
        o: weight(`${b}attn_output.weight`, hp.hidden, q),
        ffnNorm: vector(`${b}ffn_norm.weight`, hp.hidden),
        gate: weight(`${b}ffn_gate.weight`, hp.ffn, hp.hidden),
        up: weight(`${b}ffn_up.weight`, hp.ffn, hp.hidden),
        down: weight(`${b}ffn_down.weight`, hp.hidden, hp.ffn),
      });
    }
  }

  session(maxTokens: number, captureLayers = false): LlamaSession {
    return new LlamaSession(this, this.layers, this.embd, this.output, this.outputNorm, maxTokens, captureLayers);
  }
}

function matvec(w: Weight, x: Float32Array, out: Float32Array): void {
  if (Q8_ACTIVATION_TYPES.has(w.dtype)) {
    const a = quantizeActivationsQ8(x);
    for (let r = 0; r < w.rows; r++) out[r] = dotQ8Activations(w.dtype, w.bytes, r * w.rowBytes, a, w.cols);
    return;
  }
  for (let r = 0; r < w.rows; r++) out[r] = dotRow(w.dtype, w.bytes, r * w.rowBytes, x, w.cols);
}

function rmsNorm(x: Float32Array, weight: Float32Array, eps: number, out: Float32Array): void {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i] as number) * (x[i] as number);
  const scale = 1 / Math.sqrt(sum / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] as number) * scale * (weight[i] as number);
}

/** llama.cpp NORM RoPE: rotates adjacent pairs (x[2i], x[2i+1]) by pos·base^(-2i/d). */
function ropeNorm(x: Float32Array, heads: number, hd: number, pos: number, base: number): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const theta = pos * Math.pow(base, (-2 * i) / hd);
      const c = Math.cos(theta);
      const s = Math.sin(theta);
      const j = h * hd + 2 * i;
      const x0 = x[j] as number;
      const x1 = x[j + 1] as number;
      x[j] = x0 * c - x1 * s;
      x[j + 1] = x0 * s + x1 * c;
    }
  }
}

/** One decoding stream with a KV cache. `step(token)` returns the next-token logits. */
export class LlamaSession {
  private pos = 0;
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];
  /** Per layer, the residual stream after the block, one row per position (when capturing). */
  readonly layerOutputs: Float32Array[][] = [];

  constructor(
    private readonly model: LlamaModel,
    private readonly layers: Layer[],
    private readonly embd: Weight,
    private readonly output: Weight,
    private readonly outputNorm: Float32Array,
    private readonly maxTokens: number,
    private readonly captureLayers: boolean,
  ) {
    const hp = model.hp;
    const kv = hp.kvHeads * hp.headDim;
    this.kCache = layers.map(() => new Float32Array(maxTokens * kv));
    this.vCache = layers.map(() => new Float32Array(maxTokens * kv));
    if (captureLayers) for (let i = 0; i < hp.layers; i++) this.layerOutputs.push([]);
  }

  step(token: number): Float32Array {
    const hp = this.model.hp;
    if (this.pos >= this.maxTokens) throw new EngineError(`sequence longer than the session's ${this.maxTokens} tokens`);
    if (!Number.isInteger(token) || token < 0 || token >= hp.vocab) throw new EngineError(`token id ${token} outside vocab ${hp.vocab}`);
    const { hidden, heads, kvHeads, headDim: hd, ffn } = hp;
    const x = dequantize(this.embd.dtype, this.embd.bytes.subarray(token * this.embd.rowBytes, (token + 1) * this.embd.rowBytes), hidden);
    const xn = new Float32Array(hidden);
    const q = new Float32Array(heads * hd);
    const k = new Float32Array(kvHeads * hd);
    const v = new Float32Array(kvHeads * hd);
    const attn = new Float32Array(heads * hd);
    const proj = new Float32Array(hidden);
    const g = new Float32Array(ffn);
    const u = new Float32Array(ffn);
    const scores = new Float64Array(this.pos + 1);
    const nRep = heads / kvHeads;
    const scale = 1 / Math.sqrt(hd);
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l] as Layer;
      rmsNorm(x, L.attnNorm, hp.eps, xn);
      matvec(L.q, xn, q);
      matvec(L.k, xn, k);
      matvec(L.v, xn, v);
      ropeNorm(q, heads, hd, this.pos, hp.ropeBase);
      ropeNorm(k, kvHeads, hd, this.pos, hp.ropeBase);
      const kc = this.kCache[l] as Float32Array;
      const vc = this.vCache[l] as Float32Array;
      kc.set(k, this.pos * kvHeads * hd);
      vc.set(v, this.pos * kvHeads * hd);
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor(h / nRep);
        let max = -Infinity;
        for (let t = 0; t <= this.pos; t++) {
          let s = 0;
          const ko = (t * kvHeads + kvh) * hd;
          for (let d = 0; d < hd; d++) s += (q[h * hd + d] as number) * (kc[ko + d] as number);
          scores[t] = s * scale;
          if (s * scale > max) max = s * scale;
        }
        let sum = 0;
        for (let t = 0; t <= this.pos; t++) {
          const e = Math.exp((scores[t] as number) - max);
          scores[t] = e;
          sum += e;
        }
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let t = 0; t <= this.pos; t++) acc += (scores[t] as number) * (vc[(t * kvHeads + kvh) * hd + d] as number);
          attn[h * hd + d] = acc / sum;
        }
      }
      matvec(L.o, attn, proj);
      for (let i = 0; i < hidden; i++) x[i] = (x[i] as number) + (proj[i] as number);
      rmsNorm(x, L.ffnNorm, hp.eps, xn);
      matvec(L.gate, xn, g);
      matvec(L.up, xn, u);
      for (let i = 0; i < ffn; i++) {
        const a = g[i] as number;
        g[i] = (a / (1 + Math.exp(-a))) * (u[i] as number);
      }
      matvec(L.down, g, proj);
      for (let i = 0; i < hidden; i++) x[i] = (x[i] as number) + (proj[i] as number);
      if (this.captureLayers) this.layerOutputs[l]?.push(x.slice());
    }
    rmsNorm(x, this.outputNorm, hp.eps, xn);
    const logits = new Float32Array(hp.vocab);
    matvec(this.output, xn, logits);
    this.pos++;
    return logits;
  }
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] as number) > (row[best] as number)) best = i;
  return best;
}
