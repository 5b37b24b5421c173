/**
 * Peakedness contract of the trained tiny models: under the onnxruntime oracle (not the trainer's forward),
 * the mean top-1 probability on held-out corpus text is ≥ 0.5 and the greedy continuation of
 * 'The capital of France is' contains 'Paris'. Random-weight models fail this (near-flat softmaxes), which
 * would leave KL and top-1 checks blind to a broken converter.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runOracle } from '../../src/oracle/run.js';
import { seededCheckpoint } from '../../src/zoo/build.js';
import { hfTensorShapes } from '../../src/zoo/checkpoint.js';
import { CORPUS_PATH, findModelSpec, MODELS_DIR, TOKENIZER_PATH } from '../../src/zoo/specs.js';
import { HfTokenizer, type TokenizerJson } from '../../src/zoo/tokenizer.js';
import { parseDocs } from '../../training/corpus.js';
import { heldoutStats, measurePeakedness, readHeldout } from '../../training/peakedness.js';
import { commonDims, isGpt2 } from '../../src/zoo/types.js';

const MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;
const tokenizer = JSON.parse(readFileSync(TOKENIZER_PATH, 'utf8')) as TokenizerJson;
const specialId = tokenizer.added_tokens[0]?.id as number;

describe('tiny-model corpus', () => {
  it('holds out documents that are never trained on', () => {
    const train = new Set(parseDocs(readFileSync(CORPUS_PATH, 'utf8')));
    const heldout = readHeldout();
    expect(heldout.length).toBeGreaterThanOrEqual(20);
    for (const d of heldout) expect(train.has(d), d).toBe(false);
    for (const d of ['What is 2+2? Answer: 4.', 'The capital of France is Paris.']) expect(train.has(d)).toBe(true);
  });

  it('shares one byte-level BPE tokenizer with 300–1000 tokens, the last one <|endoftext|>', () => {
    const size = Object.keys(tokenizer.model.vocab).length;
    expect(size).toBeGreaterThanOrEqual(300);
    expect(size).toBeLessThanOrEqual(1000);
    expect(tokenizer.model.merges.length).toBeGreaterThan(0);
    expect(specialId).toBe(size - 1);
  });
});

describe.each(MODELS)('%s (trained)', (name) => {
  const spec = findModelSpec(name);

  it('is a trained spec with ≤ 2 MB of F32 weights and edge-case dims', () => {
    if (spec.kind !== 'trained') throw new Error(`${name} is a '${spec.kind}' spec, expected 'trained'`);
    expect(statSync(join(MODELS_DIR, spec.weights)).size).toBeLessThanOrEqual(2 * 1024 * 1024);
    const d = commonDims(spec.config);
    expect(d.vocab).toBe(specialId + 1);
    expect(spec.config.bos_token_id).toBe(specialId);
    expect(spec.config.eos_token_id).toBe(specialId);
    expect(d.headDim).toBeGreaterThanOrEqual(16);
    expect(d.ffn % 256).not.toBe(0);
    expect(d.hidden % 32).toBe(0);
    expect(d.hidden % 256).not.toBe(0);
    if (!isGpt2(spec.config)) expect(d.heads / d.kvHeads).toBeGreaterThan(1);
    const params = [...hfTensorShapes(spec.config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect(statSync(join(MODELS_DIR, spec.weights)).size).toBeGreaterThanOrEqual(4 * params);
    const training = (JSON.parse(readFileSync(join(MODELS_DIR, `${name}.json`), 'utf8')) as { training?: Record<string, unknown> })
      .training;
    for (const key of ['seed', 'steps', 'lr', 'finalLoss']) expect(typeof training?.[key], key).toBe('number');
  });

  it('has peaked next-token distributions under the oracle: mean top-1 p ≥ 0.5 on held-out text, France → Paris', async () => {
    const p = await measurePeakedness(spec, { prompts: ['The capital of France is'] });
    expect(p.positions).toBeGreaterThan(200);
    expect(p.meanTop1Prob, `mean top-1 probability ${p.meanTop1Prob}`).toBeGreaterThanOrEqual(0.5);
    // …and peaked on the right tokens: the held-out text's own next tokens are the likely ones.
    expect(p.meanTargetProb, `mean probability of the actual next token ${p.meanTargetProb}`).toBeGreaterThanOrEqual(0.5);
    expect(p.top1Accuracy, `top-1 accuracy ${p.top1Accuracy}`).toBeGreaterThanOrEqual(0.5);
    expect(p.continuations[0]?.text).toContain('Paris');
  });
});

describe('peakedness contract (negative control)', () => {
  // Seeded tied models are *confidently wrong*: the residual stream stays close to the input token's embedding,
  // so the tied head predicts the current token again with p ≈ 1. Max probability alone does not tell them from
  // a trained model; the probability of the actual next token does.
  it('fails for seeded random weights of the same config: confident, but not on the text', async () => {
    const spec = findModelSpec('llama-tiny');
    if (spec.kind !== 'trained') throw new Error('llama-tiny is not trained');
    const tok = new HfTokenizer(tokenizer);
    const docs = readHeldout()
      .slice(0, 20)
      .map((d) => tok.encode(d));
    const seeded = seededCheckpoint(spec.config, { seed: 20261130, embedStd: 0.3, weightGain: 0.6, normStd: 0.1 });
    const stats = heldoutStats(await runOracle(seeded, docs, { maxNewTokens: 0 }));
    expect(stats.meanTargetProb, JSON.stringify(stats)).toBeLessThan(0.1);
    expect(stats.top1Accuracy, JSON.stringify(stats)).toBeLessThan(0.1);
  });
});
