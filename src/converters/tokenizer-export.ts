/**
 * The tokenizer part of the reference converter: an HF checkpoint's `tokenizer.json` (+ `tokenizer_config.json`,
 * `config.json`, chat template files) exported as llama.cpp's convert_hf_to_gguf writes it, and as aprender's
 * `apr import` embeds it in APR. Facts from llama.cpp (conversion/base.py, conversion/llama.py, gguf-py/gguf/vocab.py):
 *
 * - **Family.** A llama checkpoint whose tokenizer.json is a BPE with `byte_fallback` and a `Sequence` decoder
 *   (SentencePiece converted by transformers: Llama-2, TinyLlama, Mistral-v0.1) becomes `tokenizer.ggml.model`
 *   `llama` (`_set_vocab_llama_hf`): tokens, scores, token types, `<0x00>`…`<0xFF>` typed BYTE, pre `default`.
 *   Everything else (a Llama-3 BPE with `ignore_merges`, Qwen2, GPT-2, SmolLM) is `gpt2` (`_set_vocab_gpt2`):
 *   tokens, token types, merges, and `tokenizer.ggml.pre` from `get_vocab_base_pre`.
 * - **Pre-tokenizer.** `get_vocab_base_pre` hashes the tokenizer's ids for a check text (special tokens added)
 *   and looks the hash up (llama-cpp-pre-hashes.ts). An unknown hash makes the converter stop; here the
 *   pre-tokenizer is then chosen by behaviour: the first llama.cpp pre type whose regexes split the check text
 *   into the source's own ids (the hash stands for exactly that behaviour).
 * - **SpecialVocab.** Merges as stored when strings; pairs (transformers ≥ 4.45) joined with a space, a space
 *   inside a part written as U+0120. Special ids from tokenizer_config's `*_token` matched to added tokens,
 *   then config.json's `*_token_id`; add_bos/add_eos from a `TemplateProcessing` post-processor, overridden
 *   by tokenizer_config's `add_*_token`; the chat template passed through.
 *
 * One deliberate difference: `LlamaHfVocab` writes the placeholder score -1000 for every token. llama.cpp's SPM
 * tokenizer merges the highest-scoring bigram first, so equal scores merge left to right and the file tokenizes
 * unlike its source. The scores written here are what `_set_vocab_sentencepiece` takes from `tokenizer.model`, up
 * to a monotone map: transformers built the merges of a SentencePiece tokenizer.json in the order of the merged
 * piece's score, so a piece's score is minus the rank of its first merge (pieces no merge builds: byte and
 * control tokens 0, the rest below every merged piece).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { cacheRoot } from '../cache.js';
import type { GgufKv } from '../formats/gguf/writer.js';
import { fileTokenizerEncoder, regexPreTokenizer, resolveLlamaCppPre, type FileTokenizer } from '../formats/tokenizer-from-gguf.js';
import { isSentencePieceBpe, mergesAsWritten, type HfTokenizerJson } from '../zoo/tokenizer.js';
import type { Arch } from '../zoo/types.js';
import { PRE_CHECK_TEXT, PRE_HASHES } from './llama-cpp-pre-hashes.js';

/** gguf-py `TokenType` (and SentencePieceTokenTypes): the values of `tokenizer.ggml.token_type`. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** SpecialVocab's special token types, in its order, with the GGUF key gguf-py writes for each (`seperator` sic). */
export const SPECIAL_TOKEN_KEYS = {
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  sep: 'tokenizer.ggml.seperator_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  cls: 'tokenizer.ggml.cls_token_id',
  mask: 'tokenizer.ggml.mask_token_id',
} as const;
export type SpecialTokenType = keyof typeof SPECIAL_TOKEN_KEYS;
const SPECIAL_TYPES = Object.keys(SPECIAL_TOKEN_KEYS) as SpecialTokenType[]; // the table's own keys

/** The `add_*_token` flags SpecialVocab can set, and their keys. */
export const ADD_TOKEN_KEYS = {
  bos: 'tokenizer.ggml.add_bos_token',
  eos: 'tokenizer.ggml.add_eos_token',
  sep: 'tokenizer.ggml.add_sep_token',
} as const;
export type AddTokenType = keyof typeof ADD_TOKEN_KEYS;

/** The files of a checkpoint directory a tokenizer export reads. */
export interface TokenizerSource {
  json: HfTokenizerJson;
  /** tokenizer_config.json ({} when absent). */
  config: Record<string, unknown>;
  /** config.json ({} when absent): `*_token_id` fallbacks. */
  modelConfig: Record<string, unknown>;
  /** chat_template.jinja or chat_template.json's template, when the directory has one. */
  chatTemplateFile?: string;
}

function readJsonIfExists(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>; // an HF tokenizer/config JSON file: an object
}

/** Read the tokenizer files of an HF checkpoint directory. */
export function readTokenizerSource(dir: string): TokenizerSource {
  // an HF tokenizer.json, taken in its documented shape (the exporter checks the fields it dispatches on)
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as HfTokenizerJson;
  const src: TokenizerSource = {
    json,
    config: readJsonIfExists(join(dir, 'tokenizer_config.json')) ?? {},
    modelConfig: readJsonIfExists(join(dir, 'config.json')) ?? {},
  };
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) src.chatTemplateFile = readFileSync(jinja, 'utf8');
  else {
    const t = readJsonIfExists(join(dir, 'chat_template.json'))?.chat_template;
    if (typeof t === 'string') src.chatTemplateFile = t;
  }
  return src;
}

/** `tokenizer.ggml.model`: the two families the supported architectures use. */
export type TokenizerModel = 'llama' | 'gpt2';

/** How `tokenizer.ggml.pre` was chosen (evidence for a reader of the plan). */
export type PreChoice =
  | { by: 'fixed'; note: string }
  | { by: 'hash'; chkhsh: string; reference: string }
  | { by: 'behaviour'; chkhsh: string; note: string };

/** Everything the converter writes about the tokenizer, format-neutral. */
export interface TokenizerExport {
  model: TokenizerModel;
  pre: string;
  preChoice: PreChoice;
  /** Token text per id, `vocab_size` entries. */
  tokens: string[];
  /** `tokenizer.ggml.token_type` per id (TOKEN_TYPE). */
  tokenTypes: number[];
  /** `tokenizer.ggml.scores` (llama family only). */
  scores?: number[];
  /** Merges as SpecialVocab writes them (`"left right"`); written to GGUF for the gpt2 family only. */
  merges: string[];
  specialIds: Partial<Record<SpecialTokenType, number>>;
  addSpecial: Partial<Record<AddTokenType, boolean>>;
  /** `tokenizer.ggml.add_space_prefix`, from tokenizer_config's `add_prefix_space` when it has one (llama.py). */
  addSpacePrefix?: boolean;
  chatTemplate?: string;
}

/** The family convert_hf_to_gguf picks: llama.py tries SentencePiece, then LlamaHfVocab; qwen2 and gpt2 use gpt2. */
export function tokenizerModelFor(json: HfTokenizerJson, arch: Arch): TokenizerModel {
  return arch === 'llama' && isSentencePieceBpe(json) ? 'llama' : 'gpt2';
}

/** `does_token_look_special`: added tokens some models forget to mark special. */
function looksSpecial(t: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) ||
    (t.startsWith('<|') && t.endsWith('|>')) ||
    (t.startsWith('<｜') && t.endsWith('｜>')) ||
    (t.startsWith('<unused') && t.endsWith('>'))
  );
}

const isByteToken = (t: string): boolean => /^<0x[0-9A-Fa-f]{2}>$/.test(t);

/** The content a tokenizer_config `*_token` entry names (a string or an AddedToken dict). */
function tokenContent(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (entry !== null && typeof entry === 'object' && 'content' in entry) {
    const c = entry.content;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

/** SpecialVocab's special ids, add flags and chat template for a source (gguf-py/gguf/vocab.py `_load`). */
export function specialVocab(
  src: TokenizerSource,
  nVocab: number | undefined,
): Pick<TokenizerExport, 'specialIds' | 'addSpecial' | 'chatTemplate'> {
  const specialIds: Partial<Record<SpecialTokenType, number>> = {};
  const addSpecial: Partial<Record<AddTokenType, boolean>> = {};
  const set = (typ: SpecialTokenType, id: unknown): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) return;
    if ((nVocab === undefined || id < nVocab) && specialIds[typ] === undefined) specialIds[typ] = id;
  };
  const cfg = { ...src.config };
  const added = src.json.added_tokens ?? [];
  // TemplateProcessing: a leading special token that is the BOS (or CLS) means add_bos; a trailing one add_eos.
  // tokenizers' post_processor: a processor or a Sequence of them; each field is checked below before use
  const pp = src.json.post_processor as { type?: string; processors?: unknown[] } | null | undefined;
  // as above: processors are post-processors, their template pieces {SpecialToken} or {Sequence}
  for (const proc of (pp?.processors ?? (pp ? [pp] : [])) as { type?: string; single?: { SpecialToken?: { id?: string } }[] }[]) {
    if (proc.type !== 'TemplateProcessing' || !Array.isArray(proc.single) || proc.single.length <= 1) continue;
    const first = proc.single[0]?.SpecialToken?.id;
    const last = proc.single[proc.single.length - 1]?.SpecialToken?.id;
    if (first !== undefined) {
      const bos = tokenContent(cfg.bos_token);
      if (bos === undefined && cfg.cls_token === undefined) cfg.bos_token = first;
      addSpecial.bos = first === (tokenContent(cfg.bos_token) ?? first) || first === tokenContent(cfg.cls_token);
    }
    if (last !== undefined) {
      if (tokenContent(cfg.eos_token) === undefined) cfg.eos_token = last;
      addSpecial.eos = last === tokenContent(cfg.eos_token);
    }
  }
  // SpecialVocab stops after the post-processor when there is no tokenizer_config.json: ids then come from config.json.
  const hasConfig = Object.keys(src.config).length > 0;
  for (const typ of hasConfig ? SPECIAL_TYPES : []) {
    if (typ === 'bos' || typ === 'eos' || typ === 'sep') {
      const flag = cfg[`add_${typ}_token`];
      if (typeof flag === 'boolean') addSpecial[typ] = flag;
    }
    const content = tokenContent(cfg[`${typ}_token`]);
    if (content !== undefined) set(typ, added.find((a) => a.content === content)?.id);
  }
  for (const typ of SPECIAL_TYPES) set(typ, src.modelConfig[`${typ}_token_id`]);
  const tmpl = hasConfig ? cfg.chat_template : undefined;
  const chatTemplate = typeof tmpl === 'string' ? tmpl : src.chatTemplateFile;
  return chatTemplate === undefined ? { specialIds, addSpecial } : { specialIds, addSpecial, chatTemplate };
}

/** Token text per id: the model vocab, then added tokens (which win, as in `tokenizer.get_vocab()`). */
function reverseVocab(json: HfTokenizerJson): Map<number, string> {
  const out = new Map<number, string>();
  for (const [tok, id] of Object.entries(json.model.vocab)) out.set(id, tok);
  for (const a of json.added_tokens ?? []) out.set(a.id, a.content);
  return out;
}

/** sha256 of Python's `str(list_of_ids)`, as get_vocab_base_pre computes it. */
export function preCheckHash(ids: readonly number[]): string {
  return createHash('sha256')
    .update(`[${ids.join(', ')}]`)
    .digest('hex');
}

/**
 * llama.cpp pre types tried, in order, when the hash is unknown: the architecture's usual one first. Each is
 * a name llama.cpp accepts whose regexes tokenizer-from-gguf.ts models.
 */
const BEHAVIOUR_CANDIDATES: Record<Arch, readonly string[]> = {
  gpt2: ['gpt-2', 'llama-bpe', 'qwen2', 'smollm', 'default', 'falcon'],
  llama: ['llama-bpe', 'smollm', 'gpt-2', 'qwen2', 'default', 'falcon'],
  qwen2: ['qwen2', 'gpt-2', 'llama-bpe', 'smollm', 'default', 'falcon'],
};

/**
 * `tokenizer.ggml.pre` for a byte-level BPE: the converter's hash table, else the first candidate whose
 * llama.cpp regexes give the source's ids on the check text (then on the check text without special tokens),
 * else the architecture's usual name.
 */
export function choosePre(
  src: TokenizerSource,
  tokens: string[],
  tokenTypes: number[],
  merges: string[],
  arch: Arch,
): { pre: string; preChoice: PreChoice } {
  const hf = new Tokenizer(src.json, src.config);
  const withSpecial = hf.encode(PRE_CHECK_TEXT, { add_special_tokens: true }).ids;
  const chkhsh = preCheckHash(withSpecial);
  const hit = PRE_HASHES.find(([h]) => h === chkhsh);
  if (hit) return { pre: hit[1], preChoice: { by: 'hash', chkhsh, reference: hit[2] } };
  const plain = hf.encode(PRE_CHECK_TEXT, { add_special_tokens: false }).ids;
  const file: FileTokenizer = {
    model: 'gpt2',
    pre: undefined,
    tokens,
    tokenTypes,
    merges,
    bosId: undefined,
    eosId: undefined,
    addBos: false,
  };
  const candidates = BEHAVIOUR_CANDIDATES[arch];
  for (const name of candidates) {
    const r = resolveLlamaCppPre(name);
    if (r.kind !== 'modelled') continue;
    const ids = fileTokenizerEncoder(file, regexPreTokenizer(r.regexes), { ignoreMerges: r.ignoreMerges, addBos: false }).encode(
      PRE_CHECK_TEXT,
    );
    if (ids.length === plain.length && ids.every((id, i) => id === plain[i])) {
      return {
        pre: name,
        preChoice: {
          by: 'behaviour',
          chkhsh,
          note: `hash not in convert_hf_to_gguf's table; '${name}' splits the check text as the source does`,
        },
      };
    }
  }
  const fallback = candidates[0] as string; // every arch's candidate list is non-empty
  return {
    pre: fallback,
    preChoice: {
      by: 'behaviour',
      chkhsh,
      note: `hash unknown and no modelled pre type reproduces the source; the ${arch} default '${fallback}'`,
    },
  };
}

/** `get_vocab_base` (gpt2 family): tokens, with `[PAD{i}]` UNUSED fillers, control and user-defined added tokens. */
function gpt2Vocab(json: HfTokenizerJson, vocabSize: number): { tokens: string[]; tokenTypes: number[] } {
  const reverse = reverseVocab(json);
  const added = new Map((json.added_tokens ?? []).map((a) => [a.id, a] as const));
  const tokens: string[] = [];
  const tokenTypes: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const tok = reverse.get(i);
    if (tok === undefined) {
      tokens.push(`[PAD${i}]`);
      tokenTypes.push(TOKEN_TYPE.unused);
      continue;
    }
    const a = added.get(i);
    if (a === undefined) {
      tokens.push(tok);
      tokenTypes.push(TOKEN_TYPE.normal);
    } else if (a.special === true || looksSpecial(tok)) {
      tokens.push(tok);
      tokenTypes.push(TOKEN_TYPE.control);
    } else {
      // "pre-normalize user-defined spaces"
      tokens.push(tok.replaceAll('\u2581', ' '));
      tokenTypes.push(TOKEN_TYPE.userDefined);
    }
  }
  return { tokens, tokenTypes };
}

/** Score of a piece no merge builds (below every merged piece; user-defined pieces get -1000 in llama.cpp's converter). */
const UNMERGED_SCORE_OFFSET = 1;

/** The llama (SentencePiece) family from tokenizer.json: tokens, scores (see the module comment), token types. */
function sentencePieceVocab(
  json: HfTokenizerJson,
  vocabSize: number,
  specialIds: ReadonlySet<number>,
  unkId: number | undefined,
): { tokens: string[]; tokenTypes: number[]; scores: number[] } {
  const reverse = reverseVocab(json);
  const baseSize = Object.keys(json.model.vocab).length;
  const firstRank = new Map<string, number>();
  mergesAsWritten(json).forEach((m, rank) => {
    const sp = m.indexOf(' ', 1);
    const piece = m.slice(0, sp) + m.slice(sp + 1);
    if (!firstRank.has(piece)) firstRank.set(piece, rank);
  });
  const nMerges = json.model.merges?.length ?? 0;
  const added = new Map((json.added_tokens ?? []).map((a) => [a.id, a] as const));
  const tokens: string[] = [];
  const tokenTypes: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const tok = reverse.get(i);
    if (tok === undefined) {
      tokens.push(`[PAD${i}]`);
      tokenTypes.push(TOKEN_TYPE.unused);
      scores.push(-1000);
      continue;
    }
    const a = added.get(i);
    let type: number = TOKEN_TYPE.normal;
    let text = tok;
    if (i === unkId) type = TOKEN_TYPE.unknown;
    else if (isByteToken(tok)) type = TOKEN_TYPE.byte;
    else if (specialIds.has(i) || (a !== undefined && (a.special === true || looksSpecial(tok)))) type = TOKEN_TYPE.control;
    else if (a !== undefined && i >= baseSize) {
      type = TOKEN_TYPE.userDefined;
      text = tok.replaceAll('\u2581', ' ');
    }
    tokens.push(text);
    tokenTypes.push(type);
    const rank = firstRank.get(tok);
    if (type === TOKEN_TYPE.userDefined) scores.push(-1000);
    else if (rank !== undefined) scores.push(-rank);
    else scores.push(type === TOKEN_TYPE.normal ? -(nMerges + UNMERGED_SCORE_OFFSET) : 0);
  }
  return { tokens, tokenTypes, scores };
}

/** The whole tokenizer export of a source, for a model of `arch` with `vocabSize` (config.json) ids. */
export function exportTokenizer(src: TokenizerSource, arch: Arch, vocabSize: number, preCacheKey?: string): TokenizerExport {
  const model = tokenizerModelFor(src.json, arch);
  const merges = mergesAsWritten(src.json);
  const addPrefix = src.config.add_prefix_space;
  const addSpacePrefix = arch === 'llama' && typeof addPrefix === 'boolean' ? { addSpacePrefix: addPrefix } : {};
  if (model === 'llama') {
    const sv = specialVocab(src, vocabSize);
    const specials = new Set(Object.values(sv.specialIds));
    const v = sentencePieceVocab(src.json, vocabSize, specials, sv.specialIds.unk);
    return {
      model,
      pre: 'default',
      preChoice: { by: 'fixed', note: '_set_vocab_llama_hf writes "default"' },
      ...v,
      merges,
      ...sv,
      ...addSpacePrefix,
    };
  }
  const v = gpt2Vocab(src.json, vocabSize);
  const { pre, preChoice } =
    preCacheKey === undefined
      ? choosePre(src, v.tokens, v.tokenTypes, merges, arch)
      : cachedPre(preCacheKey, () => choosePre(src, v.tokens, v.tokenTypes, merges, arch));
  return { model, pre, preChoice, ...v, merges, ...specialVocab(src, undefined), ...addSpacePrefix };
}

function kv(key: string, type: GgufKv['type'], value: GgufKv['value'], itemType?: GgufKv['itemType']): GgufKv {
  return itemType === undefined ? { key, type, value } : { key, type, value, itemType };
}

/** The `tokenizer.*` key/values of a GGUF, in convert_hf_to_gguf's order. */
export function ggufTokenizerKvs(e: TokenizerExport): GgufKv[] {
  // Arrays are copied: the export is memoised and a mutant may edit what the plan holds.
  const kvs: GgufKv[] = [];
  if (e.addSpacePrefix !== undefined) kvs.push(kv('tokenizer.ggml.add_space_prefix', 'bool', e.addSpacePrefix));
  kvs.push(
    kv('tokenizer.ggml.model', 'string', e.model),
    kv('tokenizer.ggml.pre', 'string', e.pre),
    kv('tokenizer.ggml.tokens', 'array', [...e.tokens], 'string'),
  );
  if (e.scores !== undefined) kvs.push(kv('tokenizer.ggml.scores', 'array', [...e.scores], 'f32'));
  kvs.push(kv('tokenizer.ggml.token_type', 'array', [...e.tokenTypes], 'i32'));
  if (e.model === 'gpt2') kvs.push(kv('tokenizer.ggml.merges', 'array', [...e.merges], 'string'));
  for (const typ of SPECIAL_TYPES) {
    const id = e.specialIds[typ];
    if (id !== undefined) kvs.push(kv(SPECIAL_TOKEN_KEYS[typ], 'u32', id));
  }
  // The table's own keys.
  for (const typ of Object.keys(ADD_TOKEN_KEYS) as AddTokenType[]) {
    const v = e.addSpecial[typ];
    if (v !== undefined) kvs.push(kv(ADD_TOKEN_KEYS[typ], 'bool', v));
  }
  if (e.chatTemplate !== undefined) kvs.push(kv('tokenizer.chat_template', 'string', e.chatTemplate));
  return kvs;
}

/**
 * The tokenizer fields `apr import` flattens into APR's metadata from an HF checkpoint
 * (`insert_f32_tokenizer_metadata`): vocabulary, vocab_size, model_type, bos/eos ids, merges. The strings
 * are the GGUF export's, so both formats carry the same vocabulary byte for byte.
 */
export function aprTokenizerMetadata(e: TokenizerExport): Record<string, unknown> {
  return {
    'tokenizer.vocabulary': [...e.tokens],
    'tokenizer.vocab_size': e.tokens.length,
    'tokenizer.model_type': e.model === 'llama' ? 'llama' : 'bpe',
    ...(e.specialIds.bos === undefined ? {} : { 'tokenizer.bos_token_id': e.specialIds.bos }),
    ...(e.specialIds.eos === undefined ? {} : { 'tokenizer.eos_token_id': e.specialIds.eos }),
    'tokenizer.merges': [...e.merges],
  };
}

/** Bump when the pre choice's rules change, so cached choices are recomputed. */
const PRE_CACHE_VERSION = 1;

/**
 * The pre choice, from the content-addressed cache when this exact tokenizer was seen before: the check-text
 * hash needs the whole HF tokenizer built, seconds for a 128k vocabulary, and it is a pure function of the files.
 */
function cachedPre(key: string, compute: () => { pre: string; preChoice: PreChoice }): { pre: string; preChoice: PreChoice } {
  const dir = join(cacheRoot(), 'tokenizer-pre');
  const path = join(dir, `${key.slice(0, 32)}-v${PRE_CACHE_VERSION}.json`);
  try {
    // our own cache file (written below); key and pre are checked, preChoice is as written
    const hit = JSON.parse(readFileSync(path, 'utf8')) as { key?: unknown; pre?: unknown; preChoice?: PreChoice };
    if (hit.key === key && typeof hit.pre === 'string' && hit.preChoice !== undefined) return { pre: hit.pre, preChoice: hit.preChoice };
  } catch {
    // absent or unreadable: compute
  }
  const r = compute();
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ key, ...r }));
  renameSync(tmp, path);
  return r;
}

/** Exports by content (tokenizer files, arch, vocab size): every target of a checkpoint shares one. */
const exportCache = new Map<string, TokenizerExport>();
const EXPORT_CACHE_LIMIT = 4;

/** The tokenizer files' bytes hashed, so an edited tokenizer.json is never served a stale export. */
function sourceKey(dir: string, arch: Arch, vocabSize: number): string {
  const h = createHash('sha256').update(`${arch}\0${vocabSize}\0`);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'chat_template.jinja', 'chat_template.json']) {
    const p = join(dir, f);
    h.update(`${f}\0`);
    if (existsSync(p)) h.update(readFileSync(p));
  }
  return h.digest('hex');
}

/** `exportTokenizer` of a checkpoint directory, memoised (a 128k vocabulary takes a second to export). */
export function cachedTokenizerExport(dir: string, arch: Arch, vocabSize: number): TokenizerExport {
  const key = sourceKey(dir, arch, vocabSize);
  const hit = exportCache.get(key);
  if (hit) return hit;
  const e = exportTokenizer(readTokenizerSource(dir), arch, vocabSize, key);
  if (exportCache.size >= EXPORT_CACHE_LIMIT) exportCache.delete(exportCache.keys().next().value as string); // size ≥ limit > 0: not empty
  exportCache.set(key, e);
  return e;
}
