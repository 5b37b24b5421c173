/**
 * Runs the ONNX float32 oracle for a checkpoint of any zoo architecture (llama, qwen2, gpt2) in onnxruntime-node.
 * This is the only module of the project that imports onnxruntime-node.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { buildGpt2Graph } from './gpt2-graph.js';
import { buildLlamaGraph, kvNames } from './llama-graph.js';
import type { ExternalDataOptions } from './onnx-proto.js';
import { fileTensorSource, memoryTensorSource, type TensorSource } from './tensor-source.js';
import { commonDims, headDim, isGpt2, type Arch, type Checkpoint, type HfConfig } from '../zoo/types.js';

type GraphBuild = (src: TensorSource, opts: { maxPositions: number; externalData?: ExternalDataOptions }) => Uint8Array;

/**
 * The oracle graph of each architecture; every graph has the inputs `input_ids` and `past_key_values.{i}.key/.value`,
 * and the outputs `logits`, `hidden.{i}` and `present.{i}.key/.value`.
 */
const GRAPH_BUILDERS: Record<Arch, GraphBuild> = {
  llama: buildLlamaGraph,
  qwen2: buildLlamaGraph,
  gpt2: buildGpt2Graph,
};

function graphBuilder(config: HfConfig): GraphBuild {
  const arch = config.model_type;
  // model_type comes from a config file, unchecked: it may name an architecture that has no builder
  const build = (GRAPH_BUILDERS as Partial<Record<string, GraphBuild>>)[arch];
  if (build === undefined)
    throw new Error(`no oracle graph for model_type '${String(arch)}' (known: ${Object.keys(GRAPH_BUILDERS).join(', ')})`);
  return build;
}

/** The ONNX oracle graph (serialized ModelProto, initializers inline) of a checkpoint, for up to `maxPositions` tokens. */
export function buildOracleGraph(ckpt: Checkpoint, maxPositions: number): Uint8Array {
  return graphBuilder(ckpt.config)(memoryTensorSource(ckpt), { maxPositions });
}

/** File names of an oracle graph written to a directory. */
export const ORACLE_MODEL_FILE = 'oracle.onnx';
export const ORACLE_DATA_FILE = 'oracle.onnx.data';
/**
 * Initializers of at least this many bytes go to the external data file. Small enough that every weight matrix of
 * the tiny zoo takes the external path too (so CI exercises the path the large models need); the scalars, shapes and
 * index constants stay inline.
 */
const EXTERNAL_MIN_BYTES = 4096;

/**
 * Write the oracle graph of `src` to `dir` (ORACLE_MODEL_FILE, with its weights streamed to ORACLE_DATA_FILE as
 * external data). Returns the model path and the external data size in bytes.
 */
export function writeOracleGraph(src: TensorSource, maxPositions: number, dir: string): { modelPath: string; externalBytes: number } {
  const modelPath = join(dir, ORACLE_MODEL_FILE);
  const externalData: ExternalDataOptions = { path: join(dir, ORACLE_DATA_FILE), location: ORACLE_DATA_FILE, minBytes: EXTERNAL_MIN_BYTES };
  const bytes = graphBuilder(src.config)(src, { maxPositions, externalData });
  writeFileSync(modelPath, bytes);
  return { modelPath, externalBytes: statSync(externalData.path).size };
}

export interface OracleRecord {
  promptIds: number[];
  /** promptIds followed by greedyIds. */
  ids: number[];
  greedyIds: number[];
  vocabSize: number;
  hiddenSize: number;
  /** ids.length × V; row t = next-token logits after reading ids[0..t]. */
  logits: Float32Array;
  /** Per layer, ids.length × H: the residual stream after decoder block i. */
  layerOutputs: Float32Array[];
}

export interface OracleOptions {
  maxNewTokens: number;
  /** Called once the records are made, with where the time and bytes went. */
  onStats?: (stats: OracleRunStats) => void;
}

/** Where an oracle run's time and bytes went. */
export interface OracleRunStats {
  /** Serialized ModelProto (initializers of ≥ 4 KiB not included: they are external). */
  graphBytes: number;
  /** The external data file: the weights, page-aligned. */
  externalBytes: number;
  /** Building the graph (reading, transposing and writing the weights). */
  buildMs: number;
  /** onnxruntime loading the graph (mapping and prepacking the weights). */
  sessionMs: number;
  /** Prefill and greedy decoding of every prompt. */
  decodeMs: number;
  /** onnxruntime runs: one per prompt plus one per generated token. */
  runs: number;
}

export function onnxRuntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** Argmax of row `row` of a [rows, width] matrix; the lowest index wins ties. */
function argmaxRow(data: Float32Array, row: number, width: number): number {
  const base = row * width;
  let best = 0;
  let bestVal = data[base] as number;
  for (let j = 1; j < width; j++) {
    const v = data[base + j] as number;
    if (v > bestVal) {
      bestVal = v;
      best = j;
    }
  }
  return best;
}

/** Run the oracle on a checkpoint held in memory. */
export async function runOracle(ckpt: Checkpoint, prompts: number[][], opts: OracleOptions): Promise<OracleRecord[]> {
  return runOracleOn(memoryTensorSource(ckpt), prompts, opts);
}

/**
 * Run the oracle on the checkpoint in `dir` (config.json, model.safetensors), streaming its tensors from the file into
 * the graph's external data: the build holds one tensor at a time, so a model of any size fits (peak ≈ what
 * onnxruntime holds).
 */
export async function runOracleFromDir(dir: string, prompts: number[][], opts: OracleOptions): Promise<OracleRecord[]> {
  const src = fileTensorSource(dir);
  try {
    return await runOracleOn(src, prompts, opts);
  } finally {
    src.close();
  }
}

/** Dims of one layer's past keys/values: [1, kv heads, P, head dim]. */
function kvShape(config: HfConfig): { heads: number; headDim: number } {
  if (isGpt2(config)) return { heads: config.n_head, headDim: config.n_embd / config.n_head };
  return { heads: config.num_key_value_heads, headDim: headDim(config) };
}

/**
 * Greedy decoding with the KV cache: one run over the prompt (empty past), then one run per generated token, each
 * feeding the previous run's `present.*` back as `past_key_values.*`. Every run returns its rows of logits and layer
 * outputs, so the record's rows (one per position of prompt + continuation) are assembled as the steps go: linear in
 * the sequence length, where recomputing the whole prefix at every step was quadratic.
 */
async function runOracleOn(src: TensorSource, prompts: number[][], opts: OracleOptions): Promise<OracleRecord[]> {
  const { vocab: V, hidden: H, layers: L } = commonDims(src.config);
  const maxNew = opts.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`maxNewTokens must be a non-negative integer, got ${maxNew}`);
  for (const [pi, p] of prompts.entries()) {
    if (p.length === 0) throw new Error(`prompt ${pi} is empty`);
    for (const id of p) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`prompt ${pi}: token id ${id} is outside [0, ${V})`);
    }
  }
  if (prompts.length === 0) return [];

  const maxPositions = Math.max(...prompts.map((p) => p.length)) + maxNew;
  const dir = mkdtempSync(join(tmpdir(), 'tmgt-oracle-'));
  let session: ort.InferenceSession | undefined;
  try {
    const t0 = performance.now();
    const { modelPath, externalBytes } = writeOracleGraph(src, maxPositions, dir);
    const t1 = performance.now();
    session = await ort.InferenceSession.create(modelPath, {
      graphOptimizationLevel: 'disabled',
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      executionProviders: ['cpu'],
    });
    const sess = session;
    const t2 = performance.now();
    let runs = 0;
    const kv = Array.from({ length: L }, (_, i) => kvNames(i));
    const { heads: kvHeads, headDim: hd } = kvShape(src.config);
    const fetches = ['logits', ...Array.from({ length: L }, (_, i) => `hidden.${i}`), ...kv.flatMap((n) => [n.presentKey, n.presentValue])];

    /** One run over `ids` at positions past..past+S-1; returns its logits and layer rows and the new cache. */
    const step = async (ids: number[], past: Record<string, ort.Tensor>) => {
      const input = new ort.Tensor(
        'int64',
        BigInt64Array.from(ids, (x) => BigInt(x)),
        [1, ids.length],
      );
      const out = await sess.run({ input_ids: input, ...past }, fetches);
      runs++;
      const take = (name: string, width: number): Float32Array => {
        const t = out[name];
        if (t === undefined || t.type !== 'float32') throw new Error(`oracle output '${name}' missing or not float32`);
        const d = t.dims;
        if (d.length !== 3 || d[0] !== 1 || d[1] !== ids.length || d[2] !== width) {
          throw new Error(`oracle output '${name}' has dims [${d.join(',')}], expected [1,${ids.length},${width}]`);
        }
        return t.data as Float32Array; // a 'float32' tensor's data (t.type checked above)
      };
      const present: Record<string, ort.Tensor> = {};
      for (const n of kv) {
        const k = out[n.presentKey];
        const v = out[n.presentValue];
        if (k === undefined || v === undefined) throw new Error(`oracle output '${n.presentKey}' or '${n.presentValue}' missing`);
        present[n.pastKey] = k;
        present[n.pastValue] = v;
      }
      return { logits: take('logits', V), layers: Array.from({ length: L }, (_, i) => take(`hidden.${i}`, H)), present };
    };

    const records: OracleRecord[] = [];
    for (const prompt of prompts) {
      const rows = prompt.length + maxNew;
      const logits = new Float32Array(rows * V);
      const layerOutputs = Array.from({ length: L }, () => new Float32Array(rows * H));
      let past: Record<string, ort.Tensor> = {};
      for (const n of kv) {
        past[n.pastKey] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, hd]);
        past[n.pastValue] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, hd]);
      }
      const ids = [...prompt];
      const greedyIds: number[] = [];
      let chunk = prompt;
      let at = 0; // first row of this step
      for (;;) {
        const r = await step(chunk, past);
        logits.set(r.logits, at * V);
        r.layers.forEach((l, i) => (layerOutputs[i] as Float32Array).set(l, at * H)); // both hold L layers
        for (const t of Object.values(past)) t.dispose();
        past = r.present;
        at += chunk.length;
        if (greedyIds.length === maxNew) break;
        const next = argmaxRow(logits, at - 1, V);
        greedyIds.push(next);
        ids.push(next);
        chunk = [next];
      }
      for (const t of Object.values(past)) t.dispose();
      records.push({ promptIds: [...prompt], ids, greedyIds, vocabSize: V, hiddenSize: H, logits, layerOutputs });
    }
    opts.onStats?.({
      graphBytes: statSync(modelPath).size,
      externalBytes,
      buildMs: t1 - t0,
      sessionMs: t2 - t1,
      decodeMs: performance.now() - t2,
      runs,
    });
    return records;
  } finally {
    await session?.release();
    rmSync(dir, { recursive: true, force: true });
  }
}
