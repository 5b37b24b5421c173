/**
 * Peakedness of a zoo model's next-token distributions under the onnxruntime oracle (not the trainer's own
 * forward): mean top-1 probability on the held-out documents, and greedy continuations of prompts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PROMPTS } from '../src/config.js';
import { oracleRecords } from '../src/oracle/records.js';
import type { OracleRecord } from '../src/oracle/run.js';
import { buildModel } from '../src/zoo/build.js';
import { MODELS_DIR, type ModelSpec } from '../src/zoo/specs.js';
import { HfTokenizer } from '../src/zoo/tokenizer.js';
import { parseDocs } from './corpus.js';

export const HELDOUT_PATH = join(MODELS_DIR, 'heldout.txt');

export interface Peakedness {
  /** Mean over held-out positions of max_j p(j | prefix). */
  meanTop1Prob: number;
  /** Fraction of held-out positions whose argmax is the actual next token. */
  top1Accuracy: number;
  /** Mean probability of the actual next token. */
  meanTargetProb: number;
  positions: number;
  documents: number;
  continuations: { prompt: string; text: string; ids: number[] }[];
}

export function readHeldout(path = HELDOUT_PATH): string[] {
  return parseDocs(readFileSync(path, 'utf8'));
}

/** Row statistics of a [rows, V] logits matrix: max softmax probability and the probability of `target`. */
export function rowStats(
  logits: Float32Array,
  row: number,
  V: number,
  target: number,
): { top1: number; argmax: number; targetProb: number } {
  const base = row * V;
  let max = -Infinity;
  let argmax = 0;
  for (let j = 0; j < V; j++) {
    const v = logits[base + j] as number;
    if (v > max) {
      max = v;
      argmax = j;
    }
  }
  let z = 0;
  for (let j = 0; j < V; j++) z += Math.exp((logits[base + j] as number) - max);
  return { top1: 1 / z, argmax, targetProb: Math.exp((logits[base + target] as number) - max) / z };
}

/** Held-out statistics over every position of every record that has a next token in the record. */
export function heldoutStats(
  records: readonly OracleRecord[],
): Pick<Peakedness, 'meanTop1Prob' | 'top1Accuracy' | 'meanTargetProb' | 'positions'> {
  let top1 = 0;
  let targetProb = 0;
  let correct = 0;
  let positions = 0;
  for (const r of records) {
    for (let t = 0; t + 1 < r.ids.length; t++) {
      const target = r.ids[t + 1] as number;
      const s = rowStats(r.logits, t, r.vocabSize, target);
      top1 += s.top1;
      targetProb += s.targetProb;
      if (s.argmax === target) correct++;
      positions++;
    }
  }
  return { meanTop1Prob: top1 / positions, top1Accuracy: correct / positions, meanTargetProb: targetProb / positions, positions };
}

export async function measurePeakedness(
  spec: ModelSpec,
  opts: { heldout?: string[]; prompts?: readonly string[]; maxNewTokens?: number } = {},
): Promise<Peakedness> {
  const dir = await buildModel(spec);
  const tok = HfTokenizer.fromDir(dir);
  const docs = opts.heldout ?? readHeldout();
  const docIds = docs.map((d) => tok.encode(d));
  const stats = heldoutStats(await oracleRecords(dir, docIds, 0));
  const prompts = opts.prompts ?? DEFAULT_PROMPTS;
  const greedy = await oracleRecords(
    dir,
    prompts.map((p) => tok.encode(p)),
    opts.maxNewTokens ?? 32,
  );
  return {
    ...stats,
    documents: docs.length,
    continuations: greedy.map((r, i) => ({ prompt: prompts[i] as string, text: tok.decode(r.greedyIds), ids: r.greedyIds })),
  };
}
