/**
 * Runs the ONNX float32 oracle for a checkpoint of any zoo architecture (llama, qwen2, gpt2) in onnxruntime-node.
 * This is the only module of the project that imports onnxruntime-node.
 */
import * as ort from 'onnxruntime-node';
import { buildGpt2Graph } from './gpt2-graph.js';
import { buildLlamaGraph } from './llama-graph.js';
import { commonDims, type Arch, type Checkpoint } from '../zoo/types.js';

/** The oracle graph of each architecture; every graph has the input `input_ids` and outputs `logits`, `hidden.{i}`. */
const GRAPH_BUILDERS: Record<Arch, (ckpt: Checkpoint, opts: { maxPositions: number }) => Uint8Array> = {
  llama: buildLlamaGraph,
  qwen2: buildLlamaGraph,
  gpt2: buildGpt2Graph,
};

/** The ONNX oracle graph (serialized ModelProto) of a checkpoint, for sequences up to `maxPositions` tokens. */
export function buildOracleGraph(ckpt: Checkpoint, maxPositions: number): Uint8Array {
  const arch = ckpt.config.model_type;
  const build = (GRAPH_BUILDERS as Partial<Record<string, (typeof GRAPH_BUILDERS)[Arch]>>)[arch];
  if (build === undefined) throw new Error(`no oracle graph for model_type '${String(arch)}' (known: ${Object.keys(GRAPH_BUILDERS).join(', ')})`);
  return build(ckpt, { maxPositions });
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

export async function runOracle(ckpt: Checkpoint, prompts: number[][], opts: OracleOptions): Promise<OracleRecord[]> {
  const { vocab: V, hidden: H, layers: L } = commonDims(ckpt.config);
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
  const model = buildOracleGraph(ckpt, maxPositions);
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'disabled',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    executionProviders: ['cpu'],
  });
  const layerNames = Array.from({ length: L }, (_, i) => `hidden.${i}`);

  const run = async (ids: number[], withLayers: boolean): Promise<{ logits: Float32Array; layers: Float32Array[] }> => {
    const input = new ort.Tensor('int64', BigInt64Array.from(ids, (x) => BigInt(x)), [1, ids.length]);
    const fetches = withLayers ? ['logits', ...layerNames] : ['logits'];
    const out = await session.run({ input_ids: input }, fetches);
    const take = (name: string, width: number): Float32Array => {
      const t = out[name];
      if (t === undefined || t.type !== 'float32') throw new Error(`oracle output '${name}' missing or not float32`);
      const dims = t.dims;
      if (dims.length !== 3 || dims[0] !== 1 || dims[1] !== ids.length || dims[2] !== width) {
        throw new Error(`oracle output '${name}' has dims [${dims.join(',')}], expected [1,${ids.length},${width}]`);
      }
      return (t.data as Float32Array).slice(); // own the memory; ORT may reuse its buffers
    };
    const result = { logits: take('logits', V), layers: withLayers ? layerNames.map((n) => take(n, H)) : [] };
    for (const t of Object.values(out)) t.dispose();
    return result;
  };

  try {
    const records: OracleRecord[] = [];
    for (const prompt of prompts) {
      const ids = [...prompt];
      const greedyIds: number[] = [];
      for (let step = 0; step < maxNew; step++) {
        const { logits } = await run(ids, false);
        const next = argmaxRow(logits, ids.length - 1, V);
        greedyIds.push(next);
        ids.push(next);
      }
      const final = await run(ids, true);
      records.push({
        promptIds: [...prompt],
        ids,
        greedyIds,
        vocabSize: V,
        hiddenSize: H,
        logits: final.logits,
        layerOutputs: final.layers,
      });
    }
    return records;
  } finally {
    await session.release();
  }
}
