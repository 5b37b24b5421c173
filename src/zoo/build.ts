import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { cachedDir, sha256 } from '../cache.js';
import { HarnessError } from '../errors.js';
import { f32Bytes, writeSafetensorsFile } from '../formats/safetensors/writer.js';
import { hfTensorShapes, loadCheckpoint, resizeVocabulary } from './checkpoint.js';
import { writeSeededSafetensorsStreaming, writeShapeTokenizer } from './shape-faithful.js';
import { Prng, seedFor } from './prng.js';
import { HEAVY_TAIL_VERSION, heavyTailed } from './heavy-tail.js';
import { findModelSpec, MODELS_DIR, TOKENIZER_PATH, type ModelSpec, type SeededInit } from './specs.js';
import { commonDims, isGpt2, type Checkpoint, type CheckpointTensor, type HfConfig } from './types.js';

/** Bump when the build recipe changes, so cached checkpoints are rebuilt. */
const BUILD_VERSION = 1;

const EMBEDDINGS = new Set(['model.embed_tokens.weight', 'lm_head.weight', 'wte.weight', 'wpe.weight']);

/**
 * Seeded weights: embeddings N(0, embedStd), matrices N(0, gain/√fan_in), norm gains 1 + N(0, normStd),
 * biases N(0, 0.02). Fan-in is dim 1 of an HF Linear [out, in] and dim 0 of a GPT-2 Conv1D [in, out].
 */
export function seededCheckpoint(config: HfConfig, init: SeededInit): Checkpoint {
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, shape] of hfTensorShapes(config)) {
    const rng = new Prng(seedFor(init.seed, name));
    const count = shape.reduce((a, b) => a * b, 1);
    const fanIn = (isGpt2(config) ? shape[0] : shape[1]) ?? 1;
    let data: Float32Array;
    if (/(norm|ln_\d|ln_f)\.weight$/.test(name)) data = rng.normals(count, init.normStd, 1);
    else if (name.endsWith('.bias')) data = rng.normals(count, 0.02);
    else if (EMBEDDINGS.has(name)) data = rng.normals(count, init.embedStd);
    else data = rng.normals(count, init.weightGain / Math.sqrt(fanIn));
    tensors.set(name, { shape, data });
  }
  return { config, tensors };
}

/** Write a checkpoint's config.json and model.safetensors (f32) into `dir`. */
function writeCheckpointWeights(dir: string, ckpt: Checkpoint): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(ckpt.config, null, 2) + '\n');
  writeSafetensorsFile(
    join(dir, 'model.safetensors'),
    [...ckpt.tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: 'F32' as const, data: f32Bytes(t.data) })),
    { format: 'pt' },
  );
}

/** Write a checkpoint as an HF directory: config.json, model.safetensors, tokenizer.json, tokenizer_config.json. */
export function writeCheckpointDir(dir: string, ckpt: Checkpoint, tokenizerPath = TOKENIZER_PATH): void {
  writeCheckpointWeights(dir, ckpt);
  copyFileSync(tokenizerPath, join(dir, 'tokenizer.json'));
  // an HF tokenizer.json (the zoo's own or a spec's), whose format always carries added_tokens
  const json = JSON.parse(readFileSync(tokenizerPath, 'utf8')) as { added_tokens: { id: number; content: string }[] };
  const name = (id: number) => json.added_tokens.find((t) => t.id === id)?.content ?? null;
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify(
      {
        tokenizer_class: 'GPT2Tokenizer',
        bos_token: name(ckpt.config.bos_token_id),
        eos_token: name(ckpt.config.eos_token_id),
        add_bos_token: false,
        add_prefix_space: false,
        model_max_length: commonDims(ckpt.config).maxPositions,
      },
      null,
      2,
    ) + '\n',
  );
}

/**
 * A derived model's checkpoint: the base's, with a real vocabulary put on it (new rows drawn N(0, RMS of the
 * model's own rows), so every token has a distinct, ordinary-sized embedding) and then heavy tails.
 */
export function derivedCheckpoint(base: Checkpoint, spec: Extract<ModelSpec, { kind: 'derived' }>): Checkpoint {
  let ckpt = base;
  const v = spec.vocabulary;
  if (v) ckpt = resizeVocabulary(ckpt, v.size, { bos: v.bos, eos: v.eos }, { seed: v.seed, init: 'normal' });
  if (spec.heavyTail) ckpt = heavyTailed(ckpt, spec.heavyTail).checkpoint;
  return ckpt;
}

/** Build (or find in the cache) the HF checkpoint directory of a zoo model; returns its path. */
export async function buildModel(spec: ModelSpec): Promise<string> {
  if (spec.kind === 'checkpoint') {
    if (!existsSync(join(spec.dir, 'config.json')))
      throw new HarnessError('E-CHECKPOINT', `model '${spec.name}': ${spec.dir} has no config.json`);
    return spec.dir;
  }
  if (spec.kind === 'derived') {
    // Keyed by what the base model built to (its weights, config, tokenizer), so retraining it rebuilds this.
    const base = await buildModel(findModelSpec(spec.from));
    const baseKey = ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => sha256(readFileSync(join(base, f))));
    // (heavy-tail-only recipes keep the key they had before vocabularies existed)
    const recipe = spec.vocabulary === undefined ? spec.heavyTail : { heavyTail: spec.heavyTail, vocabulary: spec.vocabulary };
    const key = sha256(JSON.stringify({ BUILD_VERSION, HEAVY_TAIL_VERSION, baseKey, recipe })).slice(0, 16);
    return cachedDir('models', `${spec.name}-${key}`, (dir) => {
      const ckpt = derivedCheckpoint(loadCheckpoint(base), spec);
      const v = spec.vocabulary;
      if (v === undefined) writeCheckpointDir(dir, ckpt, join(base, 'tokenizer.json'));
      else {
        writeCheckpointWeights(dir, ckpt);
        writeShapeTokenizer(dir, { source: v.tokenizer }, v.bos, v.eos);
      }
    });
  }
  const tokenizer = sha256(readFileSync(TOKENIZER_PATH));
  if (spec.kind === 'trained') {
    const weights = join(MODELS_DIR, spec.weights);
    const key = sha256(JSON.stringify({ BUILD_VERSION, config: spec.config, weights: sha256(readFileSync(weights)), tokenizer })).slice(
      0,
      16,
    );
    return cachedDir('models', `${spec.name}-${key}`, (dir) => {
      const ckpt = loadCheckpoint(dirname(weights), { config: spec.config, weightsFile: basename(weights) });
      writeCheckpointDir(dir, ckpt);
    });
  }
  if (spec.tokenizer) {
    const shape = spec.tokenizer;
    const key = sha256(JSON.stringify({ BUILD_VERSION, config: spec.config, init: spec.init, tokenizer: shape })).slice(0, 16);
    return cachedDir('models', `${spec.name}-${key}`, (dir) => {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(spec.config, null, 2) + '\n');
      const c = spec.config;
      writeShapeTokenizer(dir, shape, c.bos_token_id, c.eos_token_id);
      let lastPct = -1;
      writeSeededSafetensorsStreaming(join(dir, 'model.safetensors'), c, spec.init, (done, total) => {
        const pct = Math.floor((100 * done) / total);
        if (pct >= lastPct + 10) {
          lastPct = pct;
          process.stderr.write(`building ${spec.name}: ${pct}% of ${(total / 2 ** 20).toFixed(0)} MiB\n`);
        }
      });
    });
  }
  const key = sha256(JSON.stringify({ BUILD_VERSION, config: spec.config, init: spec.init, tokenizer })).slice(0, 16);
  return cachedDir('models', `${spec.name}-${key}`, (dir) => writeCheckpointDir(dir, seededCheckpoint(spec.config, spec.init)));
}
