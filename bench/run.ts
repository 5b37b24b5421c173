/**
 * `make bench`: prefill and decode throughput of the bundled engine against onnxruntime-node (same f32 model)
 * and llama.cpp through node-llama-cpp (same GGUF), plus the WASM kernels' dequantize throughput per stored type.
 * Writes reports/bench.json and prints the tables. Never part of `make test`.
 *
 * Like for like (DESIGN.md §6): the same prompt, the same number of generated tokens, the same thread count, and
 * the engines alternate within each round (tinybench runs one iteration of every task per round), so a load
 * spike on a shared machine hits all of them; each figure is the median over the rounds.
 *
 * Environment: TMGT_BENCH_MODELS (comma list, default llama-tiny,smollm-135m-shape), TMGT_BENCH_ROUNDS (default 1:
 * with more rounds on smollm-135m-shape, llama.cpp through node-llama-cpp refused a batch after a cleared sequence —
 * "inconsistent sequence positions" — and aborted the run; see bench/engines.ts LlamaCppBench.reset), TMGT_BENCH_RUNS=0
 * skips the whole-run figures (bench/cell.ts: one smollm cell, and tmgt check on the tiny zoo cold and warm).
 */
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Bench } from 'tinybench';
import { convertCheckpoint } from '../src/converters/reference.js';
import { parseTarget } from '../src/converters/targets.js';
import { cacheRoot } from '../src/cache.js';
import { buildModel } from '../src/zoo/build.js';
import { findModelSpec } from '../src/zoo/specs.js';
import { BundledBench, LlamaCppBench, OnnxBench, type BenchEngine } from './engines.js';
import { dequantizeThroughput, type DequantizeResult } from './dequantize.js';
import { benchCell, benchMakeCheck, type CellBench, type MakeCheckBench } from './cell.js';

const TARGETS = ['gguf/f32', 'gguf/q8_0', 'gguf/q4_0', 'gguf/q4_k'] as const;
type BenchTarget = (typeof TARGETS)[number];
const THREADS = [1, 2] as const;
const PHASES = ['prefill', 'decode'] as const;
type Phase = (typeof PHASES)[number];

/** Prompt and generated lengths per model: long enough to time, short enough for a 2-core CI machine. */
const LENGTHS: Record<string, { prompt: number; decode: number }> = {
  'llama-tiny': { prompt: 32, decode: 32 },
  'smollm-135m-shape': { prompt: 16, decode: 16 },
};

/** One measured figure. */
export interface BenchResult {
  model: string;
  target: BenchTarget;
  engine: BenchEngine['engine'];
  phase: Phase;
  threads: number;
  tokensPerSecond: number;
}

/** bundled ÷ another engine, same model, target, phase and threads. */
export interface BenchRatio {
  model: string;
  target: BenchTarget;
  phase: Phase;
  threads: number;
  engine: 'bundled';
  versus: 'llama.cpp' | 'onnxruntime';
  ratio: number;
}

/** reports/bench.json. */
export interface BenchReport {
  results: BenchResult[];
  ratios: BenchRatio[];
  dequantize: DequantizeResult[];
  /** A smollm cell's wall time, peak RSS and where its time went (null with TMGT_BENCH_RUNS=0). */
  cell: CellBench | null;
  /** `tmgt check` on the trained tiny zoo, cold cache and warm (null with TMGT_BENCH_RUNS=0). */
  makeCheckSeconds: MakeCheckBench | null;
  machine: { cores: number; loadAverage: number[]; node: string };
  rounds: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The reference converter's GGUF of the model, cached beside the model (keyed by the checkpoint's hash dir). */
function artifactFor(sourceDir: string, target: BenchTarget): string {
  const dir = join(cacheRoot(), 'bench');
  mkdirSync(dir, { recursive: true });
  const t = parseTarget(target);
  const path = join(dir, `${basename(sourceDir)}.${t.type}.gguf`);
  // The checkpoint directory's name carries its content hash; write then rename so an interrupted run leaves nothing half-written.
  if (!existsSync(path) || statSync(path).size === 0) {
    const tmp = `${path}.${process.pid}.tmp`;
    convertCheckpoint(sourceDir, t, tmp);
    renameSync(tmp, path);
  }
  return path;
}

async function openEngines(sourceDir: string, target: BenchTarget, capacity: number): Promise<BenchEngine[]> {
  const artifact = artifactFor(sourceDir, target);
  const engines: BenchEngine[] = [];
  for (const threads of THREADS) engines.push(new BundledBench(artifact, threads, capacity));
  for (const threads of THREADS) engines.push(await LlamaCppBench.open(artifact, threads, capacity));
  if (target === 'gguf/f32') for (const threads of THREADS) engines.push(await OnnxBench.open(sourceDir, threads, capacity));
  return engines;
}

async function benchModel(model: string, rounds: number): Promise<BenchResult[]> {
  const sourceDir = await buildModel(findModelSpec(model));
  const { prompt: P, decode: N } = LENGTHS[model] ?? { prompt: 16, decode: 16 };
  // Token ids inside every zoo vocabulary, deterministic.
  const prompt = Array.from({ length: P }, (_, i) => 1 + ((i * 37) % 250));
  const results: BenchResult[] = [];
  for (const target of TARGETS) {
    const engines = await openEngines(sourceDir, target, P + N + 1);
    const samples = new Map<string, number[]>();
    const key = (e: BenchEngine, phase: Phase) => `${e.engine}/${e.threads}/${phase}`;
    for (let round = 0; round < rounds; round++) {
      // One iteration of every task per round, engines interleaved: A prefill, A decode, B prefill, B decode, …
      // No tinybench warm-up: it runs a task without its beforeEach hook, so a prefill ran twice on one llama.cpp
      // sequence and overflowed its context. The first round is the warm-up of the caches instead (median of rounds).
      const bench = new Bench({ iterations: 1, time: 0, warmup: false, retainSamples: true, throws: true });
      for (const e of engines) {
        bench.add(key(e, 'prefill'), () => e.prefill(prompt), { beforeEach: () => e.reset() });
        // The decode task's prefill runs untimed, before each iteration.
        bench.add(key(e, 'decode'), () => e.decode(N), {
          beforeEach: async () => {
            await e.reset();
            await e.prefill(prompt);
          },
        });
      }
      const tasks = await bench.run();
      for (const t of tasks) {
        const r = t.result;
        if (r.state !== 'completed') throw new Error(`${t.name}: ${r.state}`);
        const ms = r.latency.mean;
        const list = samples.get(t.name) ?? [];
        list.push(ms);
        samples.set(t.name, list);
      }
    }
    for (const e of engines) {
      for (const phase of PHASES) {
        const ms = median(samples.get(key(e, phase)) ?? []);
        const tokens = phase === 'prefill' ? P : N;
        results.push({ model, target, engine: e.engine, phase, threads: e.threads, tokensPerSecond: (tokens * 1000) / ms });
      }
      await e.dispose();
    }
    printResults(results.filter((r) => r.model === model && r.target === target));
  }
  return results;
}

function ratiosOf(results: BenchResult[]): BenchRatio[] {
  const out: BenchRatio[] = [];
  for (const b of results.filter((r) => r.engine === 'bundled')) {
    for (const versus of ['llama.cpp', 'onnxruntime'] as const) {
      const o = results.find(
        (r) => r.engine === versus && r.model === b.model && r.target === b.target && r.phase === b.phase && r.threads === b.threads,
      );
      if (o !== undefined)
        out.push({
          model: b.model,
          target: b.target,
          phase: b.phase,
          threads: b.threads,
          engine: 'bundled',
          versus,
          ratio: b.tokensPerSecond / o.tokensPerSecond,
        });
    }
  }
  return out;
}

function printResults(rows: BenchResult[]): void {
  console.table(
    rows.map((r) => ({
      model: r.model,
      target: r.target,
      engine: r.engine,
      threads: r.threads,
      phase: r.phase,
      'tok/s': Number(r.tokensPerSecond.toFixed(1)),
    })),
  );
}

async function main(): Promise<void> {
  const models = (process.env['TMGT_BENCH_MODELS'] ?? 'llama-tiny,smollm-135m-shape').split(',').filter((m) => m.length > 0);
  const rounds = Number(process.env['TMGT_BENCH_ROUNDS'] ?? 1);
  const { cpus, loadavg } = await import('node:os');
  const results: BenchResult[] = [];
  for (const model of models) results.push(...(await benchModel(model, rounds)));
  const ratios = ratiosOf(results);
  const dequantize = await dequantizeThroughput();
  const runs = process.env['TMGT_BENCH_RUNS'] !== '0';
  const cell = runs ? await benchCell() : null;
  const makeCheckSeconds = runs ? await benchMakeCheck() : null;
  const report: BenchReport = {
    results,
    ratios,
    dequantize,
    cell,
    makeCheckSeconds,
    machine: { cores: cpus().length, loadAverage: loadavg(), node: process.version },
    rounds,
  };
  mkdirSync('reports', { recursive: true });
  writeFileSync('reports/bench.json', `${JSON.stringify(report, null, 2)}\n`);
  console.log('\nbundled ÷ other engine (same model, target, phase, threads):');
  console.table(
    ratios.map((r) => ({
      model: r.model,
      target: r.target,
      phase: r.phase,
      threads: r.threads,
      versus: r.versus,
      ratio: Number(r.ratio.toFixed(2)),
    })),
  );
  console.log('\nWASM dequantize throughput:');
  console.table(
    dequantize.map((d) => ({ type: d.type, 'stored GB/s': Number(d.storedGBps.toFixed(2)), 'f32 GB/s': Number(d.f32GBps.toFixed(2)) })),
  );
  if (cell)
    console.log(
      `\none ${cell.model} × ${cell.target} cell, all suites, warm: ${cell.wallSeconds.toFixed(1)} s wall, peak RSS ` +
        `${cell.peakRssMiB.toFixed(0)} MiB, ${cell.passed}/${cell.checks} checks; time in ${JSON.stringify(cell.timingsMs)}`,
    );
  if (makeCheckSeconds)
    console.log(
      `tmgt check on ${makeCheckSeconds.models.join(', ')} × every target: cold ${makeCheckSeconds.cold.toFixed(1)} s, ` +
        `warm ${makeCheckSeconds.warm.toFixed(1)} s`,
    );
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} cores; wrote reports/bench.json`,
  );
}

await main();
