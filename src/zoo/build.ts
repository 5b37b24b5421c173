import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachedDir, sha256 } from '../cache.js';
import { HarnessError } from '../errors.js';
import { f32Bytes, writeSafetensorsFile } from '../formats/safetensors/writer.js';
import { llamaTensorShapes } from './checkpoint.js';
import { Prng, seedFor } from './prng.js';
import { TOKENIZER_PATH, type ModelSpec, type SeededInit } from './specs.js';
import type { Checkpoint, CheckpointTensor, HfConfig } from './types.js';

/** Bump when the build recipe changes, so cached checkpoints are rebuilt. */
const BUILD_VERSION = 1;

/** Seeded weights: embeddings N(0, embedStd), matrices N(0, gain/√fan_in), norm gains 1 + N(0, normStd), biases N(0, 0.02). */
export function seededCheckpoint(config: HfConfig, init: SeededInit): Checkpoint {
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, shape] of llamaTensorShapes(config)) {
    const rng = new Prng(seedFor(init.seed, name));
    const count = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.endsWith('norm.weight')) data = rng.normals(count, init.normStd, 1);
    else if (name.endsWith('.bias')) data = rng.normals(count, 0.02);
    else if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') data = rng.normals(count, init.embedStd);
    else data = rng.normals(count, init.weightGain / Math.sqrt(shape[1] ?? 1));
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}

/** Write a checkpoint as an HF directory: config.json, model.safetensors, tokenizer.json, tokenizer_config.json. */
export function writeCheckpointDir(dir: string, ckpt: Checkpoint, tokenizerPath = TOKENIZER_PATH): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(ckpt.config, null, 2) + '\n');
  writeSafetensorsFile(
    join(dir, 'model.safetensors'),
    [...ckpt.tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const, data: f32Bytes(t.data) })),
    { format: 'pt' },
  );
  copyFileSync(tokenizerPath, join(dir, 'tokenizer.json'));
  const json = JSON.parse(readFileSync(tokenizerPath, 'utf8')) as { added_tokens: { id: number; content: string }[] };
  const name = (id: number) => json.added_tokens.find((t) => t.id === id)?.content ?? null;
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'GPT2Tokenizer', bos_token: name(ckpt.config.bos_token_id), eos_token: name(ckpt.config.eos_token_id), add_bos_token: false, add_prefix_space: false, model_max_length: ckpt.config.max_position_embeddings }, null, 2) + '\n',
  );
}

/** Build (or find in the cache) the HF checkpoint directory of a zoo model; returns its path. */
export async function buildModel(spec: ModelSpec): Promise<string> {
  if (spec.kind === 'checkpoint') {
    if (!existsSync(join(spec.dir, 'config.json'))) throw new HarnessError('E-CHECKPOINT', `model '${spec.name}': ${spec.dir} has no config.json`);
    return spec.dir;
  }
  const key = sha256(JSON.stringify({ BUILD_VERSION, config: spec.config, init: spec.init, tokenizer: sha256(readFileSync(TOKENIZER_PATH)) })).slice(0, 16);
  return cachedDir('models', `${spec.name}-${key}`, (dir) => writeCheckpointDir(dir, seededCheckpoint(spec.config, spec.init)));
}
