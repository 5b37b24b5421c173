/**
 * Deterministic training of a tiny zoo model: seeded init (Prng per tensor), seeded batches, Adam with
 * linear warm-up and cosine decay, global-norm gradient clipping, next-token cross-entropy. Runs on tfjs's
 * WASM backend with one thread, so a given seed and step count give the same weights on a given machine.
 */
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { hfTensorShapes } from '../src/zoo/checkpoint.js';
import { Prng, seedFor } from '../src/zoo/prng.js';
import { commonDims, isGpt2, type Checkpoint, type CheckpointTensor, type HfConfig } from '../src/zoo/types.js';
import { disposeConsts, forward, forwardConsts, type Params } from './model.js';

export interface TrainOptions {
  seed: number;
  steps: number;
  /** Peak learning rate (after warm-up). */
  lr: number;
  warmupSteps: number;
  /** The learning rate decays (cosine) to lr · minLrFraction at the last step. */
  minLrFraction: number;
  batchSize: number;
  seqLen: number;
  /** Clip the global gradient norm to this. */
  clipNorm: number;
}

export interface TrainResult {
  checkpoint: Checkpoint;
  /** Mean loss over the last 5% of steps (at least 10). */
  finalLoss: number;
  losses: number[];
  seconds: number;
}

let backendReady: Promise<void> | undefined;

/** Select tfjs's WASM backend, single-threaded (call before any tensor is created). */
export function initBackend(): Promise<void> {
  backendReady ??= (async () => {
    setThreadsCount(1);
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
    await tf.ready();
  })();
  return backendReady;
}

const EMBEDDINGS = new Set(['model.embed_tokens.weight', 'lm_head.weight', 'wte.weight']);
const OUTPUT_PROJECTIONS = /(o_proj|down_proj|c_proj)\.weight$/;

/**
 * Seeded initial weights, HF names and shapes: norm gains 1, biases 0, token embeddings N(0, 0.05),
 * positions N(0, 0.02), input projections N(0, 1/√fan_in), residual output projections additionally
 * scaled by 1/√(2·layers).
 */
export function initialCheckpoint(config: HfConfig, seed: number): Checkpoint {
  const layers = commonDims(config).layers;
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, shape] of hfTensorShapes(config)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const rng = new Prng(seedFor(seed, name));
    const fanIn = (isGpt2(config) ? shape[0] : shape[1]) ?? 1;
    let data: Float32Array;
    if (/(norm|ln_\d|ln_f)\.weight$/.test(name)) data = new Float32Array(count).fill(1);
    else if (name.endsWith('.bias')) data = new Float32Array(count);
    else if (EMBEDDINGS.has(name)) data = rng.normals(count, 0.05);
    else if (name === 'wpe.weight') data = rng.normals(count, 0.02);
    else data = rng.normals(count, (OUTPUT_PROJECTIONS.test(name) ? 1 / Math.sqrt(2 * layers) : 1) / Math.sqrt(fanIn));
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}

/**
 * Training batches: each row starts at the beginning of a document (as prompts do, at position 0) and
 * continues with further random documents, every document followed by the end-of-text id, cut to seqLen + 1.
 */
export class Batches {
  private readonly rng: Prng;
  constructor(
    private readonly docs: number[][],
    private readonly eos: number,
    seed: number,
  ) {
    if (docs.length === 0) throw new Error('no training documents');
    this.rng = new Prng(seedFor(seed, 'batches'));
  }
  next(batchSize: number, seqLen: number): { inputs: Int32Array; targets: Int32Array } {
    const inputs = new Int32Array(batchSize * seqLen);
    const targets = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      const row: number[] = [];
      while (row.length < seqLen + 1) {
        const doc = this.docs[Math.floor(this.rng.uniform() * this.docs.length)] as number[];
        row.push(...doc, this.eos);
      }
      for (let t = 0; t < seqLen; t++) {
        inputs[b * seqLen + t] = row[t] as number;
        targets[b * seqLen + t] = row[t + 1] as number;
      }
    }
    return { inputs, targets };
  }
}

export function learningRate(step: number, o: TrainOptions): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const progress = (step - o.warmupSteps) / Math.max(1, o.steps - o.warmupSteps);
  return o.lr * (o.minLrFraction + (1 - o.minLrFraction) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export async function train(
  config: HfConfig,
  docs: number[][],
  eos: number,
  o: TrainOptions,
  log: (msg: string) => void = () => {},
): Promise<TrainResult> {
  await initBackend();
  const vocab = commonDims(config).vocab;
  const init = initialCheckpoint(config, o.seed);
  const params: Params = new Map();
  for (const [name, t] of init.tensors) params.set(name, tf.variable(tf.tensor(t.data, t.shape), true, `p_${name}`));
  const vars = [...params.values()];
  const optimizer = tf.train.adam(o.lr, 0.9, 0.98, 1e-8);
  const setLr = (lr: number) => ((optimizer as unknown as { learningRate: number }).learningRate = lr);
  const batches = new Batches(docs, eos, o.seed);
  const consts = forwardConsts(config, o.seqLen);
  const losses: number[] = [];
  const t0 = Date.now();
  try {
    for (let step = 0; step < o.steps; step++) {
      const { inputs, targets } = batches.next(o.batchSize, o.seqLen);
      setLr(learningRate(step, o));
      const loss = tf.tidy(() => {
        const ids = tf.tensor2d(inputs, [o.batchSize, o.seqLen], 'int32');
        const labels = tf.oneHot(tf.tensor1d(targets, 'int32'), vocab);
        const { value, grads } = tf.variableGrads(() => {
          const logp = tf.logSoftmax(forward(config, params, ids, consts));
          return tf.neg(tf.mean(tf.sum(tf.mul(logp, labels), -1))) as tf.Scalar;
        }, vars);
        const names = Object.keys(grads);
        const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n] as tf.Tensor)))));
        const scale = tf.div(o.clipNorm, tf.maximum(norm, o.clipNorm));
        optimizer.applyGradients(names.map((n) => ({ name: n, tensor: tf.mul(grads[n] as tf.Tensor, scale) })));
        return value;
      });
      const l = (await loss.data())[0] as number;
      loss.dispose();
      if (!Number.isFinite(l)) throw new Error(`training diverged at step ${step}: loss ${l}`);
      losses.push(l);
      if (step % 50 === 0 || step === o.steps - 1)
        log(`step ${step} loss ${l.toFixed(4)} lr ${learningRate(step, o).toExponential(2)} ${((Date.now() - t0) / 1000).toFixed(0)}s`);
    }
    const tensors = new Map<string, CheckpointTensor>();
    for (const [name, v] of params) tensors.set(name, { shape: [...v.shape], data: new Float32Array(await v.data()) });
    const tail = Math.max(10, Math.round(o.steps * 0.05));
    const last = losses.slice(-tail);
    return {
      checkpoint: { config, tensors },
      finalLoss: last.reduce((a, b) => a + b, 0) / last.length,
      losses,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    disposeConsts(consts);
    optimizer.dispose();
    for (const v of vars) v.dispose();
  }
}

/** Logits [ids.length, V] of one sequence under the tfjs forward (for cross-checking against the oracle). */
export async function tfjsLogits(ckpt: Checkpoint, ids: number[]): Promise<Float32Array> {
  await initBackend();
  const params: Params = new Map();
  for (const [name, t] of ckpt.tensors) params.set(name, tf.variable(tf.tensor(t.data, t.shape), false));
  const consts = forwardConsts(ckpt.config, ids.length);
  try {
    const out = tf.tidy(() => forward(ckpt.config, params, tf.tensor2d(Int32Array.from(ids), [1, ids.length], 'int32'), consts));
    const data = new Float32Array(await out.data());
    out.dispose();
    return data;
  } finally {
    disposeConsts(consts);
    for (const v of params.values()) v.dispose();
  }
}
