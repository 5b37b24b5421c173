import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** GPT-2's byte → printable unicode map (`bytes_to_unicode` in openai/gpt-2 encoder.py). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map: string[] = new Array<string>(256);
  for (const b of bs) map[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++);
  }
  return map;
}

/** GPT-2's pre-tokenizer split, the one HF's ByteLevel pre-tokenizer applies with use_regex. */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export const SPECIAL_TOKEN = '<|endoftext|>';

/** One entry of `added_tokens` in an HF `tokenizer.json`. */
export interface HfAddedToken {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/**
 * Any HF `tokenizer.json` the harness reads (a user's checkpoint: SentencePiece-derived BPE with byte fallback,
 * byte-level BPE with its own pre-tokenizer, …): only the fields read here are typed. Merges come as
 * `"left right"` strings, or (transformers ≥ 4.45, so that a part may contain a space) as `[left, right]` pairs.
 */
export interface HfTokenizerJson {
  added_tokens?: HfAddedToken[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: unknown;
  model: {
    type: string;
    vocab: Record<string, number>;
    merges?: (string | [string, string])[];
    byte_fallback?: boolean;
    ignore_merges?: boolean;
    unk_token?: string | null;
  };
}

/** A space inside a merge part, as SpecialVocab encodes it (`chr(ord(' ') + 256)`, GPT-2's byte map of 0x20). */
const MERGE_SPACE = String.fromCodePoint(0x20 + 256);

/** tokenizer.json merges as SpecialVocab writes them: strings as they are, `[a, b]` pairs joined with a space. */
export function mergesAsWritten(json: HfTokenizerJson): string[] {
  const merges = json.model.merges ?? [];
  return merges.map((m) => (typeof m === 'string' ? m : m.map((part) => part.replaceAll(' ', MERGE_SPACE)).join(' ')));
}

/** `_set_vocab_llama_hf`'s test: a BPE with byte fallback and a Sequence decoder is a converted SentencePiece model. */
export function isSentencePieceBpe(json: HfTokenizerJson): boolean {
  const m = json.model;
  const isLlama3 = m.type === 'BPE' && m.ignore_merges === true && m.byte_fallback !== true;
  const decoder = json.decoder as { type?: unknown } | null | undefined; // only its type is read, and checked
  return !isLlama3 && m.type === 'BPE' && m.byte_fallback === true && decoder?.type === 'Sequence';
}

/** HF `tokenizer.json` for a byte-level BPE (the fields the zoo writes). */
export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: {
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: false;
    byte_fallback: false;
    ignore_merges: false;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

/**
 * Learn a byte-level BPE from a corpus: ids 0–255 are the bytes (in byte order, GPT-2 unicode form), then
 * one token per merge, most frequent pair first (ties broken by the pair's text, so training is
 * deterministic), then the special token. Used once to make models/tokenizer.json; a test re-trains and
 * compares.
 */
export function trainByteLevelBpe(corpus: string, vocabSize: number): TokenizerJson {
  const byteChar = bytesToUnicode();
  const encoder = new TextEncoder();
  const wordFreq = new Map<string, number>();
  for (const m of corpus.matchAll(GPT2_SPLIT)) {
    const w = Array.from(encoder.encode(m[0]), (b) => byteChar[b] as string).join('\u0000'); // bytesToUnicode maps all 256 bytes
    wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);
  }
  const words = [...wordFreq].map(([w, f]) => ({ syms: w.split('\u0000'), freq: f }));
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[byteChar[b] as string] = b; // bytesToUnicode maps all 256 bytes
  const merges: [string, string][] = [];
  let next = 256;
  while (next < vocabSize - 1) {
    const counts = new Map<string, number>();
    for (const { syms, freq } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = `${syms[i]} ${syms[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + freq);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [k, c] of counts) {
      if (c > bestCount || (c === bestCount && best !== undefined && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split(' ') as [string, string]; // a pair key: two symbols joined by one space
    const merged = a + b;
    merges.push([a, b]);
    if (vocab[merged] === undefined) vocab[merged] = next++;
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w.syms[i] as string); // i < syms.length
      }
      w.syms = out;
    }
  }
  return byteLevelBpeJson({ ...vocab, [SPECIAL_TOKEN]: next }, merges, next);
}

/** An HF `tokenizer.json` for a byte-level BPE with GPT-2's pre-tokenizer and `<|endoftext|>` at `specialId`. */
export function byteLevelBpeJson(vocab: Record<string, number>, merges: [string, string][], specialId: number): TokenizerJson {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } as const;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: specialId, content: SPECIAL_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** What a converter needs to write tokenizer metadata: tokens in id order, merges, special ids. */
export interface TokenizerTable {
  tokens: string[];
  merges: string[];
  /** per id: 1 normal, 3 control (llama.cpp's `tokenizer.ggml.token_type`). */
  tokenTypes: number[];
  bosId: number;
  eosId: number;
}

export function tokenizerTable(json: TokenizerJson, vocabSize: number, bosId: number, eosId: number): TokenizerTable {
  const tokens = new Array<string>(vocabSize).fill('');
  const tokenTypes = new Array<number>(vocabSize).fill(1);
  for (const [tok, id] of Object.entries(json.model.vocab)) if (id < vocabSize) tokens[id] = tok;
  for (const t of json.added_tokens) {
    if (t.id < vocabSize) {
      tokens[t.id] = t.content;
      tokenTypes[t.id] = t.special ? 3 : 4;
    }
  }
  // Ids the tokenizer never produces (vocab padded up to the model's vocab_size) get unique placeholder text,
  // as HF converters do, so the GGUF vocabulary has no duplicates.
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === '') {
      tokens[i] = `[PAD${i}]`;
      tokenTypes[i] = 5;
    }
  }
  // A pair's parts may contain spaces only in the pair form; the zoo's never do (bytes map to printable characters).
  return { tokens, merges: json.model.merges.map(([a, b]) => `${a} ${b}`), tokenTypes, bosId, eosId };
}

/** A checkpoint directory's tokenizer, encoded and decoded by Hugging Face's own JS implementation. */
export class HfTokenizer {
  private readonly tok: Tokenizer;
  constructor(
    readonly json: HfTokenizerJson,
    readonly config: Record<string, unknown> = {},
  ) {
    this.tok = new Tokenizer(json, config);
  }
  static fromDir(dir: string): HfTokenizer {
    // an HF tokenizer.json, handed to @huggingface/tokenizers' Tokenizer as it is
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as HfTokenizerJson;
    let config: Record<string, unknown> = {};
    try {
      // tokenizer_config.json: an object of options, handed to the Tokenizer as it is
      config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    } catch {
      // tokenizer_config.json is optional
    }
    return new HfTokenizer(json, config);
  }
  /** Token ids of `text` without special tokens (no BOS/EOS from the post-processor). */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }
  /** Token ids of `text` as `tokenizer(text)` gives them: the post-processor's special tokens included. */
  encodeWithSpecial(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: true }).ids;
  }
  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: false });
  }
}
