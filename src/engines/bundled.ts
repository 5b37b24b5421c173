import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { errorMessage, HarnessError } from '../errors.js';
import { FileByteSource } from '../formats/byte-source.js';
import { readModelFile } from '../formats/read-model.js';
import { argmax } from '../engine/llama.js';
import { loadEngineModel } from '../engine/registry.js';
import type { EngineSession } from '../engine/types.js';
import type { EngineRequest, EngineResult, EngineSequenceResult } from './types.js';

function concatRows(rows: Float32Array[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(r, i * width));
  return out;
}

/** The bundled engine as an adapter: load the artifact, run every sequence; a failure is a result, not a throw. */
export function runBundledEngine(req: EngineRequest): EngineResult {
  const start = performance.now();
  const engine = 'bundled';
  let src: FileByteSource | undefined;
  try {
    src = new FileByteSource(req.artifact);
    // the source checkpoint's config.json; llamaHparamsFromJson checks each field it reads
    const config = req.configPath === undefined ? undefined : (JSON.parse(readFileSync(req.configPath, 'utf8')) as Record<string, unknown>);
    const model = loadEngineModel(readModelFile(src), src, config === undefined ? {} : { config });
    const vocab = model.hp.vocab;
    const sequences: EngineSequenceResult[] = req.sequences.map((ids, s) => {
      const session = model.session(ids.length, req.captureLayers);
      const promptLength = Math.min(req.promptLengths[s] ?? ids.length, ids.length);
      const rows: Float32Array[] = [];
      // The greedy continuation goes on from the prompt's KV cache (a fork at promptLength), not a recompute.
      let greedy: EngineSession | undefined;
      const wantsGreedy = req.maxNewTokens > 0;
      if (wantsGreedy && promptLength === 0) greedy = model.session(req.maxNewTokens);
      for (const id of ids) {
        rows.push(session.step(id));
        if (wantsGreedy && session.position === promptLength) greedy = session.fork(promptLength + req.maxNewTokens);
      }
      const greedyIds: number[] = [];
      if (greedy !== undefined) {
        let last = rows[promptLength - 1] ?? new Float32Array(0);
        for (let i = 0; i < req.maxNewTokens; i++) {
          const next = argmax(last);
          greedyIds.push(next);
          if (i + 1 < req.maxNewTokens) last = greedy.step(next);
        }
      }
      const result: EngineSequenceResult = { ids, logits: concatRows(rows, vocab), vocabSize: vocab, greedyIds };
      if (req.captureLayers) result.layerOutputs = session.layerOutputs.map((l) => concatRows(l, model.hp.hidden));
      return result;
    });
    return { status: 'ok', engine, sequences, durationMs: performance.now() - start };
  } catch (e) {
    // The harness's own failure (the kernels cannot load) is not the artifact's: it propagates (exit 2).
    if (e instanceof HarnessError) throw e;
    return { status: 'failed', engine, message: errorMessage(e), durationMs: performance.now() - start };
  } finally {
    src?.close();
  }
}
