/**
 * The three engines `make bench` times, behind one shape: prefill a prompt, then decode greedily.
 *
 * - bundled: this project's engine on the WASM SIMD kernels, token by token (it has no batched prefill);
 * - llama.cpp through node-llama-cpp (the same GGUF), prefill as one batch, decode one token per call;
 * - onnxruntime-node on the oracle's f32 graph with past keys/values (a decoder graph as optimum exports
 *   them): prefill in one run, then one run per token. bench/ is outside src/, so it may import
 *   onnxruntime-node itself (src/oracle stays its only importer inside the library); the graph is the
 *   oracle's, written by src/oracle/run.ts, and ORT may optimize it, as a user's deployment would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import * as ort from 'onnxruntime-node';
import { argmax } from '../src/engine/llama.js';
import { loadEngineModel } from '../src/engine/registry.js';
import type { EngineModel, EngineSession } from '../src/engine/types.js';
import { FileByteSource } from '../src/formats/byte-source.js';
import { readModelFile } from '../src/formats/read-model.js';
import { kvNames } from '../src/oracle/llama-graph.js';
import { writeOracleGraph } from '../src/oracle/run.js';
import { fileTensorSource } from '../src/oracle/tensor-source.js';
import { commonDims, headDim, isGpt2, type HfConfig } from '../src/zoo/types.js';

/** One engine on one model file at one thread count. */
export interface BenchEngine {
  readonly engine: 'bundled' | 'llama.cpp' | 'onnxruntime';
  readonly threads: number;
  /** Untimed, before each timed iteration: start from a clean state. */
  reset(): Promise<void>;
  /** Read the prompt from an empty cache. */
  prefill(prompt: number[]): Promise<void>;
  /** After `prefill`, generate n tokens greedily. */
  decode(n: number): Promise<void>;
  dispose(): Promise<void>;
}

export class BundledBench implements BenchEngine {
  readonly engine = 'bundled';
  private readonly src: FileByteSource;
  private readonly model: EngineModel;
  private session: EngineSession | undefined;
  private last: Float32Array = new Float32Array(0);

  constructor(
    artifact: string,
    readonly threads: number,
    private readonly capacity: number,
  ) {
    this.src = new FileByteSource(artifact);
    this.model = loadEngineModel(readModelFile(this.src), this.src, { kernels: 'wasm', threads });
  }
  async reset(): Promise<void> {}
  async prefill(prompt: number[]): Promise<void> {
    this.session = this.model.session(this.capacity);
    for (const id of prompt) this.last = this.session.step(id);
  }
  async decode(n: number): Promise<void> {
    const s = this.session;
    if (s === undefined) throw new Error('decode before prefill');
    for (let i = 0; i < n; i++) this.last = s.step(argmax(this.last));
  }
  async dispose(): Promise<void> {
    this.src.close();
  }
}

let sharedLlama: Promise<Llama> | undefined;

export class LlamaCppBench implements BenchEngine {
  readonly engine = 'llama.cpp';
  private next: number | undefined;
  private context: LlamaContext | undefined;
  private sequence: LlamaContextSequence | undefined;

  private constructor(
    readonly threads: number,
    private readonly model: LlamaModel,
    private readonly capacity: number,
  ) {}

  static async open(artifact: string, threads: number, capacity: number): Promise<LlamaCppBench> {
    sharedLlama ??= getLlama({ gpu: false, build: 'never', progressLogs: false, logLevel: LlamaLogLevel.error, maxThreads: 2 });
    const llama = await sharedLlama;
    const model = await llama.loadModel({ modelPath: artifact, gpuLayers: 0 });
    const b = new LlamaCppBench(threads, model, capacity);
    await b.reset();
    return b;
  }

  /**
   * Clear the sequence (untimed). Once on smollm-135m-shape, a cleared sequence still reported a token, and llama.cpp
   * refused the next batch ("inconsistent sequence positions", X = 1, Y = 1): then, and only then, a fresh context.
   * (A fresh context every iteration slowed llama.cpp's decode by two orders of magnitude on this machine.)
   */
  async reset(): Promise<void> {
    if (this.sequence !== undefined) {
      await this.sequence.clearHistory();
      if (this.sequence.nextTokenIndex === 0) return;
    }
    await this.context?.dispose();
    this.context = await this.model.createContext({
      contextSize: this.capacity + 1,
      batchSize: this.capacity,
      sequences: 1,
      threads: { ideal: this.threads, min: this.threads },
    });
    this.sequence = this.context.getSequence();
  }

  private ask(id: number): ControlledEvaluateInputItem {
    return [id as Token, { generateNext: { token: true, options: { temperature: 0 } } }];
  }

  async prefill(prompt: number[]): Promise<void> {
    const seq = this.sequence;
    if (seq === undefined) throw new Error('prefill before reset');
    const items = [...prompt.slice(0, -1).map((id) => id as Token), this.ask(prompt[prompt.length - 1] ?? 0)];
    const res = await seq.controlledEvaluate(items);
    this.next = res[items.length - 1]?.next.token ?? undefined;
  }

  async decode(n: number): Promise<void> {
    const seq = this.sequence;
    if (seq === undefined) throw new Error('decode before reset');
    for (let i = 0; i < n; i++) {
      if (this.next === undefined) throw new Error('llama.cpp produced no token');
      const res = await seq.controlledEvaluate([this.ask(this.next)]);
      this.next = res[0]?.next.token ?? undefined;
    }
  }

  async dispose(): Promise<void> {
    await this.context?.dispose();
    await this.model.dispose();
  }
}

export class OnnxBench implements BenchEngine {
  readonly engine = 'onnxruntime';
  private past: Record<string, ort.Tensor> = {};
  private nextId = 0;

  private constructor(
    readonly threads: number,
    private readonly session: ort.InferenceSession,
    private readonly config: HfConfig,
    private readonly dir: string,
  ) {}

  /** The oracle graph of the checkpoint in `sourceDir` for up to `capacity` positions, in a session of `threads` threads. */
  static async open(sourceDir: string, threads: number, capacity: number): Promise<OnnxBench> {
    const src = fileTensorSource(sourceDir);
    const dir = mkdtempSync(join(tmpdir(), 'tmgt-bench-ort-'));
    try {
      const { modelPath } = writeOracleGraph(src, capacity, dir);
      const session = await ort.InferenceSession.create(modelPath, {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        executionProviders: ['cpu'],
      });
      return new OnnxBench(threads, session, src.config, dir);
    } finally {
      src.close();
    }
  }

  private async run(ids: number[]): Promise<void> {
    const { vocab: V, layers: L } = commonDims(this.config);
    const input = new ort.Tensor(
      'int64',
      BigInt64Array.from(ids, (x) => BigInt(x)),
      [1, ids.length],
    );
    const fetches = ['logits', ...Array.from({ length: L }, (_, i) => [kvNames(i).presentKey, kvNames(i).presentValue]).flat()];
    const out = await this.session.run({ input_ids: input, ...this.past }, fetches);
    for (const t of Object.values(this.past)) t.dispose();
    const present: Record<string, ort.Tensor> = {};
    for (let i = 0; i < L; i++) {
      const n = kvNames(i);
      const k = out[n.presentKey];
      const v = out[n.presentValue];
      if (k === undefined || v === undefined) throw new Error('onnxruntime returned no present keys/values');
      present[n.pastKey] = k;
      present[n.pastValue] = v;
    }
    this.past = present;
    const logits = out['logits'];
    if (logits === undefined) throw new Error('onnxruntime returned no logits');
    // The oracle graph's logits output is float32 (checked by src/oracle/run.ts for every record).
    const data = logits.data as Float32Array;
    this.nextId = argmax(data.subarray(data.length - V));
    logits.dispose();
  }

  async reset(): Promise<void> {}

  async prefill(prompt: number[]): Promise<void> {
    for (const t of Object.values(this.past)) t.dispose();
    this.past = {};
    const heads = isGpt2(this.config) ? this.config.n_head : this.config.num_key_value_heads;
    const hd = isGpt2(this.config) ? this.config.n_embd / this.config.n_head : headDim(this.config);
    for (let i = 0; i < commonDims(this.config).layers; i++) {
      const n = kvNames(i);
      this.past[n.pastKey] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, hd]);
      this.past[n.pastValue] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, hd]);
    }
    await this.run(prompt);
  }

  async decode(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.run([this.nextId]);
  }

  async dispose(): Promise<void> {
    await this.session.release();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
