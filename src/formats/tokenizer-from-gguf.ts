/**
 * The tokenizer a model file carries, rebuilt as a Hugging Face `tokenizer.json` object so that
 * @huggingface/tokenizers encodes text with the artifact's own vocabulary, merges and pre-tokenizer —
 * the way llama.cpp would (`src/llama-vocab.cpp`: `llama_vocab::impl::load`, `llm_tokenizer_bpe`).
 *
 * GGUF: `tokenizer.ggml.model` 'gpt2' (byte-level BPE), `.tokens`, `.token_type`, `.merges`, `.pre`,
 * `.bos_token_id`, `.eos_token_id`, `.add_bos_token` (formats.md §1.7). APR v2: the flattened custom
 * keys aprender writes, `tokenizer.vocabulary`, `tokenizer.merges`, `tokenizer.bos_token_id`,
 * `tokenizer.eos_token_id` and optionally `tokenizer.pre_type` (formats.md §2).
 *
 * llama.cpp's BPE pre-tokenizer is a list of regexes applied in turn, each splitting every fragment the
 * previous one produced into matches and the text between them; HF's `Split` with behavior `Isolated`
 * does exactly that, so each pre type becomes a `Sequence` of `Split`s followed by a byte-level map.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { MetaValue } from './types.js';

/** llama.cpp's pre-tokenizer families whose regexes are modelled here (`llm_tokenizer_bpe` constructor). */
export const PRE_FAMILIES = ['default', 'gpt2', 'qwen2', 'llama3', 'smaug', 'starcoder', 'falcon'] as const;
export type PreFamily = (typeof PRE_FAMILIES)[number];

const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

const LLAMA3_REGEX = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;

/** The regexes of each family, verbatim from llama-vocab.cpp (the `adapted` forms llama.cpp runs). */
const FAMILY_REGEXES: Record<PreFamily, readonly string[]> = {
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, '\\p{N}+', '[0-9][0-9][0-9]'],
  gpt2: [GPT2_REGEX],
  qwen2: [`${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`],
  llama3: [LLAMA3_REGEX],
  smaug: [LLAMA3_REGEX],
  starcoder: ['\\p{N}', GPT2_REGEX],
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2_REGEX, '[0-9][0-9][0-9]'],
};

/** Flags llama.cpp sets per family when it loads the pre type (before `tokenizer.ggml.add_bos_token` overrides add_bos). */
const FAMILY_FLAGS: Record<PreFamily, { ignoreMerges: boolean; addBos: boolean }> = {
  default: { ignoreMerges: false, addBos: false },
  gpt2: { ignoreMerges: false, addBos: false },
  qwen2: { ignoreMerges: false, addBos: false },
  llama3: { ignoreMerges: true, addBos: true },
  // LLAMA_VOCAB_PRE_TYPE_SMAUG / DBRX: Llama-3's regex, but neither ignore_merges nor add_bos.
  smaug: { ignoreMerges: false, addBos: false },
  starcoder: { ignoreMerges: false, addBos: false },
  falcon: { ignoreMerges: false, addBos: false },
};

/** `tokenizer.ggml.pre` values llama.cpp maps to a modelled family. */
const PRE_NAMES: Record<string, PreFamily> = {
  default: 'default',
  'gpt-2': 'gpt2',
  'phi-2': 'gpt2',
  'jina-es': 'gpt2',
  'jina-de': 'gpt2',
  gigachat: 'gpt2',
  'jina-v2-es': 'gpt2',
  'jina-v2-de': 'gpt2',
  'a.x-4.0': 'gpt2',
  mellum: 'gpt2',
  'modern-bert': 'gpt2',
  mpt: 'gpt2',
  olmo: 'gpt2',
  jais: 'gpt2',
  trillion: 'gpt2',
  'granite-docling': 'gpt2',
  exaone4: 'gpt2',
  qwen2: 'qwen2',
  'deepseek-r1-qwen': 'qwen2',
  kormo: 'qwen2',
  f2llmv2: 'qwen2',
  megrez: 'qwen2',
  stablelm2: 'qwen2',
  hunyuan: 'qwen2',
  'solar-open': 'qwen2',
  llama3: 'llama3',
  'llama-v3': 'llama3',
  'llama-bpe': 'llama3',
  falcon3: 'llama3',
  'falcon-h1': 'llama3',
  pixtral: 'llama3',
  'midm-2.0': 'llama3',
  lfm2: 'llama3',
  'jina-v5-nano': 'llama3',
  starcoder: 'starcoder',
  refact: 'starcoder',
  'command-r': 'starcoder',
  smollm: 'starcoder',
  codeshell: 'starcoder',
  exaone: 'starcoder',
  'minerva-7b': 'starcoder',
  mellum2: 'starcoder',
  'smaug-bpe': 'smaug',
  dbrx: 'smaug',
  falcon: 'falcon',
};

/**
 * Pre types llama.cpp accepts whose regexes this module does not model: a file declaring one loads in
 * llama.cpp, but its probe-string ids cannot be checked here.
 */
const KNOWN_UNMODELLED_PRE = new Set([
  'minicpm5',
  'deepseek-llm',
  'deepseek-coder',
  'deepseek-v3',
  'spark2_5',
  'youtu',
  'jais-2',
  'gemma4',
  'granite-embed-multi-311m',
  'sarvam-moe',
  'jina-v1-en',
  'jina-v2-code',
  'roberta-bpe',
  'whitespace',
  'qwen35',
  'poro-chat',
  'glm4',
  'chatglm-bpe',
  'viking',
  'tekken',
  'bloom',
  'gpt3-finnish',
  'exaone-moe',
  'chameleon',
  'gpt-4o',
  'llama4',
  'kanana2',
  'talkie',
  'granite-embed-multi-97m',
  'tiny_aya',
  'cohere2moe',
  'superbpe',
  'bailingmoe',
  'bailingmoe2',
  'llada-moe',
  'seed-coder',
  'hunyuan-dense',
  'hy_v4',
  'joyai-llm',
  'kimi-k2',
  'ufakzeka',
  'grok-2',
  'afmoe',
  'laguna',
  'minimax-m2',
]);

/** How llama.cpp would pre-tokenize for a `tokenizer.ggml.pre` value. */
export type PreResolution =
  | { kind: 'modelled'; family: PreFamily; regexes: readonly string[]; ignoreMerges: boolean; addBos: boolean }
  /** llama.cpp knows the name, this module does not model its regexes. */
  | { kind: 'unmodelled'; name: string }
  /** llama.cpp refuses the file: `unknown pre-tokenizer type` (paiml/aprender#277). */
  | { kind: 'unknown'; name: string };

/** Resolve a `tokenizer.ggml.pre` value; a missing one is 'default' (llama.cpp warns, then uses it). */
export function resolveLlamaCppPre(pre: string | undefined): PreResolution {
  const name = pre === undefined || pre === '' ? 'default' : pre;
  const family = Object.hasOwn(PRE_NAMES, name) ? PRE_NAMES[name] : undefined;
  if (family !== undefined) return { kind: 'modelled', family, regexes: FAMILY_REGEXES[family], ...FAMILY_FLAGS[family] };
  return KNOWN_UNMODELLED_PRE.has(name) ? { kind: 'unmodelled', name } : { kind: 'unknown', name };
}

/** The tokenizer fields of a model file, as data. */
export interface FileTokenizer {
  /** `tokenizer.ggml.model` ('gpt2' = byte-level BPE); APR: `tokenizer.model_type` when present. */
  model: string | undefined;
  /** `tokenizer.ggml.pre` / APR `tokenizer.pre_type`, undefined when absent. */
  pre: string | undefined;
  /** Token text per id. */
  tokens: string[];
  /** Per id: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; undefined when absent. */
  tokenTypes: number[] | undefined;
  /** Merges as stored, `"left right"`. */
  merges: string[];
  /** `tokenizer.ggml.scores` (SentencePiece family: the merge priority), undefined when absent. */
  scores?: number[] | undefined;
  /** `tokenizer.ggml.add_space_prefix`, undefined when absent (llama.cpp's SPM default is true). */
  addSpacePrefix?: boolean | undefined;
  bosId: number | undefined;
  eosId: number | undefined;
  /** The explicit add-BOS flag, undefined when the file does not say. */
  addBos: boolean | undefined;
}

function str(v: MetaValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function int(v: MetaValue | undefined): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}
function strings(v: MetaValue | undefined): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined; // every item checked
}
function ints(v: MetaValue | undefined): number[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined; // every item checked
}
const bool = (v: MetaValue | undefined): boolean | undefined => (typeof v === 'boolean' ? v : undefined);

/** The tokenizer a GGUF declares; undefined when it has no `tokenizer.ggml.tokens` string array. */
export function ggufTokenizer(meta: ReadonlyMap<string, MetaValue>): FileTokenizer | undefined {
  const tokens = strings(meta.get('tokenizer.ggml.tokens'));
  if (tokens === undefined) return undefined;
  const addBos = meta.get('tokenizer.ggml.add_bos_token');
  return {
    model: str(meta.get('tokenizer.ggml.model')),
    pre: str(meta.get('tokenizer.ggml.pre')),
    tokens,
    tokenTypes: ints(meta.get('tokenizer.ggml.token_type')),
    merges: strings(meta.get('tokenizer.ggml.merges')) ?? [],
    scores: ints(meta.get('tokenizer.ggml.scores')),
    addSpacePrefix: bool(meta.get('tokenizer.ggml.add_space_prefix')),
    bosId: int(meta.get('tokenizer.ggml.bos_token_id')),
    eosId: int(meta.get('tokenizer.ggml.eos_token_id')),
    addBos: typeof addBos === 'boolean' ? addBos : undefined,
  };
}

/** The tokenizer an APR v2 file embeds (aprender's flattened custom keys); undefined without a vocabulary. */
export function aprTokenizer(meta: ReadonlyMap<string, MetaValue>): FileTokenizer | undefined {
  const tokens = strings(meta.get('tokenizer.vocabulary'));
  if (tokens === undefined) return undefined;
  const addBos = meta.get('tokenizer.add_bos_token');
  return {
    model: str(meta.get('tokenizer.model_type')),
    pre: str(meta.get('tokenizer.pre_type')),
    tokens,
    tokenTypes: ints(meta.get('tokenizer.token_type')),
    merges: strings(meta.get('tokenizer.merges')) ?? [],
    bosId: int(meta.get('tokenizer.bos_token_id')),
    eosId: int(meta.get('tokenizer.eos_token_id')),
    addBos: typeof addBos === 'boolean' ? addBos : undefined,
  };
}

/** Structural problems llama.cpp would reject or silently mis-handle. */
export interface TokenizerDefects {
  /** Token texts that occur at more than one id (llama.cpp: "duplicate token in vocabulary", paiml/aprender#277). */
  duplicateTokens: { token: string; ids: number[] }[];
  /** Merges listed more than once (llama.cpp keeps the first rank, HF the last: the two runtimes disagree). */
  duplicateMerges: { merge: string; ranks: number[] }[];
  /** Merges that are not `"left right"` with both parts non-empty. */
  malformedMerges: { merge: string; rank: number }[];
}

export function tokenizerDefects(t: FileTokenizer): TokenizerDefects {
  const firstId = new Map<string, number[]>();
  t.tokens.forEach((tok, id) => {
    const ids = firstId.get(tok);
    if (ids) ids.push(id);
    else firstId.set(tok, [id]);
  });
  const ranks = new Map<string, number[]>();
  const malformedMerges: TokenizerDefects['malformedMerges'] = [];
  t.merges.forEach((m, rank) => {
    if (splitMerge(m) === undefined) malformedMerges.push({ merge: m, rank });
    const r = ranks.get(m);
    if (r) r.push(rank);
    else ranks.set(m, [rank]);
  });
  return {
    duplicateTokens: [...firstId].filter(([, ids]) => ids.length > 1).map(([token, ids]) => ({ token, ids })),
    duplicateMerges: [...ranks].filter(([, r]) => r.length > 1).map(([merge, r]) => ({ merge, ranks: r })),
    malformedMerges,
  };
}

/** llama.cpp splits a merge at the first space after its first character (`word.find(' ', 1)`). */
function splitMerge(m: string): [string, string] | undefined {
  const pos = m.indexOf(' ', 1);
  if (pos < 0) return undefined;
  const a = m.slice(0, pos);
  const b = m.slice(pos + 1);
  return a.length > 0 && b.length > 0 ? [a, b] : undefined;
}

/** A `tokenizer.json` pre_tokenizer (only the shapes this module writes). */
export type PreTokenizerJson = Record<string, unknown>;

/** llama.cpp's regex list as an HF pre_tokenizer: each regex isolates its matches, then bytes map to GPT-2's unicode alphabet. */
export function regexPreTokenizer(regexes: readonly string[]): PreTokenizerJson {
  return {
    type: 'Sequence',
    pretokenizers: [
      ...regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  };
}

/**
 * An HF `tokenizer.json` object for a file's byte-level BPE: vocabulary from the token list (the first id
 * of a duplicated token wins, as the first `emplace` does in llama.cpp before it throws), control and
 * user-defined tokens as added tokens, merges deduplicated keeping the first rank (llama.cpp's
 * `bpe_ranks.emplace`), and the given pre-tokenizer. No post-processor: BOS is the caller's business.
 */
export function tokenizerJson(t: FileTokenizer, preTokenizer: PreTokenizerJson, ignoreMerges: boolean): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  t.tokens.forEach((tok, id) => {
    if (!Object.hasOwn(vocab, tok)) vocab[tok] = id;
  });
  const added = t.tokens.flatMap((tok, id) => {
    const type = t.tokenTypes?.[id];
    return type === 3 || type === 4
      ? [{ id, content: tok, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === 3 }]
      : [];
  });
  const seen = new Set<string>();
  const merges: [string, string][] = [];
  for (const m of t.merges) {
    const pair = splitMerge(m);
    if (pair === undefined || seen.has(m)) continue;
    seen.add(m);
    merges.push(pair);
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: ignoreMerges,
      vocab,
      merges,
    },
  };
}

/**
 * llama.cpp's SentencePiece tokenizer (`llm_tokenizer_spm_session`) as an HF tokenizer.json: text escaped (a
 * leading space when `add_space_prefix`, every space as U+2581), split into characters, then the adjacent pair
 * whose concatenation is the highest-scoring token merged first (leftmost on ties), again and again; what stays
 * unknown falls back to `<0xXX>` byte tokens. llama.cpp merges any pair whose concatenation is a token, so
 * every split of every token is a merge here, ranked by the token's score — transformers' SentencePiece
 * converter builds a Llama tokenizer.json the same way. Control and user-defined tokens are added tokens.
 */
export function spmTokenizerJson(t: FileTokenizer): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  t.tokens.forEach((tok, id) => {
    if (!Object.hasOwn(vocab, tok)) vocab[tok] = id;
  });
  const scores = t.scores ?? [];
  const candidates: { a: string; b: string; score: number; id: number }[] = [];
  t.tokens.forEach((tok, id) => {
    const chars = Array.from(tok);
    if (chars.length < 2 || vocab[tok] !== id) return;
    let left = '';
    for (let i = 1; i < chars.length; i++) {
      left += chars[i - 1] as string; // 1 ≤ i < chars.length
      const right = tok.slice(left.length);
      if (Object.hasOwn(vocab, left) && Object.hasOwn(vocab, right)) candidates.push({ a: left, b: right, score: scores[id] ?? 0, id });
    }
  });
  // Highest score first; the sort is stable, so equal scores keep token-id order.
  candidates.sort((x, y) => y.score - x.score);
  const added = t.tokens.flatMap((tok, id) => {
    const type = t.tokenTypes?.[id];
    return type === 3 || type === 4
      ? [{ id, content: tok, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === 3 }]
      : [];
  });
  const escape = [{ type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: t.addSpacePrefix === false ? escape : [{ type: 'Prepend', prepend: '\u2581' }, ...escape],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: candidates.map((c) => [c.a, c.b]),
    },
  };
}

/** Encodes text with a file's own tokenizer. */
export interface FileTokenizerEncoder {
  /** Token ids of `text`, with BOS prepended when `addBos`. */
  encode(text: string): number[];
  readonly addBos: boolean;
  readonly json: Record<string, unknown>;
}

/**
 * An encoder for a file's tokenizer under a given pre-tokenizer. `addBos` prepends `t.bosId` (when the
 * file has one), as llama.cpp's `tokenize(text, add_special = true)` does.
 */
export function fileTokenizerEncoder(
  t: FileTokenizer,
  preTokenizer: PreTokenizerJson,
  opts: { ignoreMerges: boolean; addBos: boolean },
): FileTokenizerEncoder {
  const json = t.model === 'llama' ? spmTokenizerJson(t) : tokenizerJson(t, preTokenizer, opts.ignoreMerges);
  return encoderFromJson(json, opts.addBos ? t.bosId : undefined);
}

/** An encoder for any tokenizer.json object (no post-processor applied), prepending `bosId` when given. */
export function encoderFromJson(json: Record<string, unknown>, bosId: number | undefined): FileTokenizerEncoder {
  const tok = new Tokenizer(json, {});
  const bos = bosId;
  return {
    json,
    addBos: bos !== undefined,
    encode(text: string): number[] {
      const ids = tok.encode(text, { add_special_tokens: false }).ids;
      return bos === undefined ? ids : [bos, ...ids];
    },
  };
}

/**
 * The encoder llama.cpp would build from a GGUF's `tokenizer.ggml.*` metadata, or why it cannot be
 * built (no tokens, not a byte-level BPE, a pre type llama.cpp rejects or this module does not model).
 */
export function tokenizerFromGguf(
  meta: ReadonlyMap<string, MetaValue>,
):
  | { ok: true; tokenizer: FileTokenizer; encoder: FileTokenizerEncoder; pre: Extract<PreResolution, { kind: 'modelled' }> }
  | { ok: false; tokenizer: FileTokenizer | undefined; reason: string; pre?: PreResolution } {
  const t = ggufTokenizer(meta);
  if (t === undefined) return { ok: false, tokenizer: undefined, reason: 'no tokenizer.ggml.tokens string array' };
  if (t.model === 'llama') {
    // SPM: pre type 'default', BOS added unless the file says otherwise (llama-vocab.cpp, LLAMA_VOCAB_TYPE_SPM).
    const spmPre = { kind: 'modelled', family: 'default', regexes: [], ignoreMerges: false, addBos: true } as const;
    const encoder = fileTokenizerEncoder(t, {}, { ignoreMerges: false, addBos: t.addBos ?? true });
    return { ok: true, tokenizer: t, encoder, pre: spmPre };
  }
  if (t.model !== 'gpt2')
    return {
      ok: false,
      tokenizer: t,
      reason: `tokenizer.ggml.model is ${JSON.stringify(t.model ?? null)}, not "gpt2" (byte-level BPE) or "llama" (SentencePiece)`,
    };
  const pre = resolveLlamaCppPre(t.pre);
  if (pre.kind === 'unknown')
    return { ok: false, tokenizer: t, pre, reason: `llama.cpp rejects tokenizer.ggml.pre '${pre.name}': unknown pre-tokenizer type` };
  if (pre.kind === 'unmodelled')
    return {
      ok: false,
      tokenizer: t,
      pre,
      reason: `tokenizer.ggml.pre '${pre.name}' is known to llama.cpp but its regexes are not modelled here`,
    };
  const encoder = fileTokenizerEncoder(t, regexPreTokenizer(pre.regexes), {
    ignoreMerges: pre.ignoreMerges,
    addBos: t.addBos ?? pre.addBos,
  });
  return { ok: true, tokenizer: t, encoder, pre };
}
