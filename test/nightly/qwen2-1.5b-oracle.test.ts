/**
 * Nightly (TMGT_NIGHTLY=1, `make nightly`): the oracle scales past protobuf's 2 GB. qwen2-1.5b-shape (Qwen2-1.5B's
 * exact dims, 1,543,714,304 parameters, 6.2 GB of f32 weights) gets one oracle build in a process of its own: the
 * weights are streamed from model.safetensors into ONNX external data, and the process's peak RSS must stay within
 * 2× the f32 weights + 1 GiB. Its logits at every prompt position are checked against the independent float64 pass
 * (within 1e-5 relative, as the other shape-faithful oracles), that pass reading the checkpoint one tensor at a time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fileTensorSource } from '../../src/oracle/tensor-source.js';
import type { OracleRunStats } from '../../src/oracle/run.js';
import { buildModel } from '../../src/zoo/build.js';
import { parameterCount } from '../../src/zoo/shape-faithful.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';
import type { Checkpoint, CheckpointTensor } from '../../src/zoo/types.js';
import { forwardF64 } from '../reference/llama-f64.js';

const MODEL = 'qwen2-1.5b-shape';
const PROMPT = 'The capital of France is';
const MAX_NEW = 4;
const GIB = 1024 ** 3;

/** A Checkpoint whose tensors are read from the file when the f64 pass asks for them, never all at once. */
function streamedCheckpoint(dir: string): { ckpt: Checkpoint; close: () => void } {
  const src = fileTensorSource(dir);
  class StreamedTensors extends Map<string, CheckpointTensor> {
    override get(name: string): CheckpointTensor | undefined {
      return src.get(name);
    }
    override has(name: string): boolean {
      return src.has(name);
    }
  }
  return { ckpt: { config: src.config, tensors: new StreamedTensors() }, close: () => src.close() };
}

describe('qwen2-1.5b-shape oracle (nightly)', () => {
  it('builds with external data within 2× the f32 weights + 1 GiB of peak RSS and matches float64', { timeout: 3_600_000 }, async () => {
    const spec = findModelSpec(MODEL);
    if (spec.kind !== 'seeded') throw new Error(`${MODEL} is not a seeded spec`);
    const dir = await buildModel(spec);
    const ids = HfTokenizer.fromDir(dir).encode(PROMPT);
    const weightBytes = 4 * parameterCount(spec.config);
    const work = mkdtempSync(join(tmpdir(), 'tmgt-1.5b-'));
    try {
      const logitsPath = join(work, 'logits.f32');
      const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
      const child = new URL('./oracle-child.ts', import.meta.url).pathname;
      const line = execFileSync(process.execPath, ['--import', tsx, child, dir, JSON.stringify(ids), String(MAX_NEW), logitsPath], {
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
        maxBuffer: 1 << 20,
      });
      const run = JSON.parse(line.trim().split('\n').pop() ?? '') as {
        ids: number[];
        greedyIds: number[];
        stats: OracleRunStats;
        maxRssKiB: number;
      };
      const peakBytes = run.maxRssKiB * 1024;
      const bound = 2 * weightBytes + GIB;
      console.log(
        `${MODEL}: f32 weights ${(weightBytes / GIB).toFixed(2)} GiB, graph ${(run.stats.graphBytes / 1024).toFixed(0)} KiB + external ${(run.stats.externalBytes / GIB).toFixed(2)} GiB; ` +
          `build ${(run.stats.buildMs / 1000).toFixed(1)} s, session ${(run.stats.sessionMs / 1000).toFixed(1)} s, ${run.stats.runs} runs ${(run.stats.decodeMs / 1000).toFixed(1)} s; ` +
          `peak RSS ${(peakBytes / GIB).toFixed(2)} GiB (bound ${(bound / GIB).toFixed(2)} GiB); greedy ${JSON.stringify(run.greedyIds)}`,
      );
      expect(run.stats.externalBytes).toBeGreaterThan(2 * GIB); // past protobuf's limit: only external data can hold it
      expect(run.stats.graphBytes).toBeLessThan(64 << 20);
      expect(run.greedyIds).toHaveLength(MAX_NEW);
      expect(peakBytes).toBeLessThanOrEqual(bound);

      const buf = readFileSync(logitsPath);
      const logits = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const V = spec.config.vocab_size;
      expect(logits.length).toBe((ids.length + MAX_NEW) * V);
      const { ckpt, close } = streamedCheckpoint(dir);
      let ref: Float64Array;
      try {
        ref = forwardF64(ckpt, run.ids);
      } finally {
        close();
      }
      let worst = 0;
      for (let t = 0; t < run.ids.length; t++) {
        let maxDiff = 0;
        let maxRef = 0;
        for (let j = 0; j < V; j++) {
          maxDiff = Math.max(maxDiff, Math.abs((logits[t * V + j] as number) - (ref[t * V + j] as number)));
          maxRef = Math.max(maxRef, Math.abs(ref[t * V + j] as number));
        }
        worst = Math.max(worst, maxDiff / maxRef);
      }
      console.log(
        `${MODEL}: ${run.ids.length} positions (prompt + greedy), worst max|Δ|/max|logit| vs float64 = ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThanOrEqual(1e-5);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
