/**
 * The llama.cpp adapter's two paths (src/engines/llama-cpp.ts) are the same llama.cpp computation: on the reference
 * GGUF of every tiny-zoo model (trained, heavy-tailed, Llama-2 vocabulary) at every GGUF target, the raw logits read
 * through libllama's C API (koffi) and node-llama-cpp's next-token probabilities give the same distribution at every
 * position (log-softmax of both, KL ≤ 1e-9 in both directions) and the same greedy continuation. Real llama.cpp on
 * both sides, in this process; the teacher-forced ids are each prompt plus llama.cpp's own greedy continuation, as
 * the oracle's ids are a prompt plus its greedy continuation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROMPTS, HEAVY_TAILED_MODELS, REAL_VOCAB_MODELS, TRAINED_MODELS } from '../../src/config.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { allTargets, parseTarget } from '../../src/converters/targets.js';
import { argmaxFirst, loadLlamaFfi } from '../../src/engines/llama-cpp-ffi.js';
import { defaultLlamaCppPath, runLlamaCppEngine, type LlamaCppPath } from '../../src/engines/llama-cpp.js';
import type { EngineRequest, EngineResult } from '../../src/engines/types.js';
import { klPerRow } from '../../src/metrics.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

const MODELS = [...TRAINED_MODELS, ...HEAVY_TAILED_MODELS, ...REAL_VOCAB_MODELS];
const GGUF_TARGETS = allTargets()
  .filter((t) => t.format === 'gguf')
  .map((t) => t.id);
/** The brief's bound: the two paths differ only by f32 rounding of the softmax and of log p. */
const KL_MAX = 1e-9;
/** Continuation appended to each prompt (the oracle's is 32 greedy tokens), and greedy tokens compared. */
const CONTINUATION = 32;
const GREEDY = 16;

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-llama-logits-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function ok(r: EngineResult) {
  if (r.status !== 'ok') throw new Error(`llama.cpp failed: ${r.message}`);
  return r;
}

async function run(req: EngineRequest, path: LlamaCppPath) {
  return ok(await runLlamaCppEngine(req, path));
}

/** Worst per-position KL of `a` vs `b` over both directions. */
function worstKl(a: Float32Array, b: Float32Array, vocab: number): { worst: number; at: number } {
  const back = klPerRow(b, a, vocab);
  const kl = klPerRow(a, b, vocab).map((x, t) => Math.max(x, back[t] ?? Infinity));
  const worst = Math.max(...kl);
  return { worst, at: kl.indexOf(worst) };
}

/** Each model's source dir and prompt ids, built once. */
const sources = new Map<string, Promise<{ dir: string; prompts: number[][] }>>();
function source(model: string) {
  let s = sources.get(model);
  if (s === undefined) {
    s = buildModel(findModelSpec(model)).then((dir) => {
      const tok = HfTokenizer.fromDir(dir);
      return { dir, prompts: DEFAULT_PROMPTS.map((p) => tok.encode(p)) };
    });
    sources.set(model, s);
  }
  return s;
}

describe('llama.cpp through its C API', () => {
  it('is the default path here (the library node-llama-cpp ships is installed and reads back as v0.4.0)', () => {
    const ffi = loadLlamaFfi();
    expect(ffi.available ? 'available' : ffi.reason).toBe('available');
    if (process.env['TMGT_LLAMA_CPP_API'] === undefined) expect(defaultLlamaCppPath()).toEqual({ path: 'ffi' });
  });

  it('TMGT_LLAMA_CPP_API=node-llama-cpp forces the fallback path, with the reason', () => {
    const before = process.env['TMGT_LLAMA_CPP_API'];
    process.env['TMGT_LLAMA_CPP_API'] = 'node-llama-cpp';
    try {
      expect(defaultLlamaCppPath()).toEqual({ path: 'node-llama-cpp', reason: 'TMGT_LLAMA_CPP_API=node-llama-cpp' });
    } finally {
      if (before === undefined) delete process.env['TMGT_LLAMA_CPP_API'];
      else process.env['TMGT_LLAMA_CPP_API'] = before;
    }
  });

  it("greedy picks the first of equal maxima, as llama.cpp's greedy sampler does", () => {
    expect(argmaxFirst(Float32Array.of(1, 3, 3, 2))).toBe(1);
    expect(argmaxFirst(Float32Array.of(-5, -5))).toBe(0);
    expect(argmaxFirst(Float32Array.of(0, Number.NaN, 2))).toBe(2);
  });
});

// Each target: one conversion and three llama.cpp runs; the Llama-2 vocabulary's node-llama-cpp run is ~100 ms per
// position (~15 s per file on a loaded 2-core machine).
describe.each(MODELS)('%s: raw logits (C API) and node-llama-cpp probabilities agree', { timeout: 600_000 }, (model) => {
  it.each(GGUF_TARGETS)('%s', async (targetId) => {
    const { dir, prompts } = await source(model);
    const file = join(workDir, `${model}-${targetId.replace('/', '-')}.gguf`);
    convertCheckpoint(dir, parseTarget(targetId), file);
    const promptLengths = prompts.map((p) => p.length);
    const base = { artifact: file, format: 'gguf' as const, promptLengths, captureLayers: false };
    const cont = await run({ ...base, sequences: prompts, maxNewTokens: CONTINUATION }, 'ffi');
    const req: EngineRequest = {
      ...base,
      sequences: prompts.map((p, i) => [...p, ...(cont.sequences[i]?.greedyIds ?? [])]),
      maxNewTokens: GREEDY,
    };
    const raw = await run(req, 'ffi');
    const probs = await run(req, 'node-llama-cpp');
    expect(raw.sequences).toHaveLength(prompts.length);
    expect(probs.sequences).toHaveLength(prompts.length);
    let discriminates = false;
    for (const [i, r] of raw.sequences.entries()) {
      const p = probs.sequences[i];
      if (p === undefined) throw new Error(`node-llama-cpp returned no sequence ${i}`);
      const vocab = r.vocabSize;
      expect(p.vocabSize).toBe(vocab);
      expect(r.ids).toEqual(req.sequences[i]);
      expect(r.logits.length).toBe(r.ids.length * vocab);
      expect(p.logits.length).toBe(r.logits.length);
      const { worst, at } = worstKl(r.logits, p.logits, vocab);
      expect(worst, `sequence ${i}: KL ${worst} at position ${at}`).toBeLessThanOrEqual(KL_MAX);
      expect(r.greedyIds).toHaveLength(GREEDY);
      expect(r.greedyIds, `sequence ${i} greedy`).toEqual(p.greedyIds);
      // The teacher-forced continuation is llama.cpp's own greedy: its argmax at the last prompt position is the
      // first continuation token, a check on row order.
      const last = r.logits.subarray((promptLengths[i]! - 1) * vocab, promptLengths[i]! * vocab);
      expect(argmaxFirst(last)).toBe(r.ids[promptLengths[i]!]);
      // The metric can fail: the raw rows against node-llama-cpp's rows one position later are far apart.
      const shifted = klPerRow(r.logits.subarray(0, r.logits.length - vocab), p.logits.subarray(vocab), vocab);
      if (Math.max(...shifted) > 1e3 * KL_MAX) discriminates = true;
    }
    expect(discriminates).toBe(true);
  });
});

describe('failures', () => {
  it("a GGUF without tokenizer merges fails on both paths with llama.cpp's own reason", async () => {
    const { dir, prompts } = await source('llama-tiny');
    const file = join(workDir, 'no-merges.gguf');
    convertCheckpoint(dir, parseTarget('gguf/f32'), file, (plan) => {
      if (plan.format === 'gguf') plan.kvs = plan.kvs.filter((k) => k.key !== 'tokenizer.ggml.merges');
    });
    const req: EngineRequest = {
      artifact: file,
      format: 'gguf',
      sequences: prompts,
      maxNewTokens: 0,
      promptLengths: prompts.map((p) => p.length),
      captureLayers: false,
    };
    for (const path of ['ffi', 'node-llama-cpp'] as const) {
      const r = await runLlamaCppEngine(req, path);
      expect(r.status, path).toBe('failed');
      if (r.status === 'failed') expect(r.message, path).toMatch(/cannot find tokenizer merges in model file/);
    }
    // a good file right after: the log callback and the backend are left as they were
    const good = join(workDir, 'good.gguf');
    convertCheckpoint(dir, parseTarget('gguf/f32'), good);
    for (const path of ['ffi', 'node-llama-cpp'] as const)
      expect(ok(await runLlamaCppEngine({ ...req, artifact: good }, path)).sequences).toHaveLength(4);
  });
});
