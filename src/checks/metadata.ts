import { errorMessage } from '../errors.js';
import { statusOf } from './codes.js';
import { DEFAULT_PROMPTS } from '../config.js';
import {
  aprTokenizer,
  encoderFromJson,
  fileTokenizerEncoder,
  ggufTokenizer,
  regexPreTokenizer,
  resolveLlamaCppPre,
  tokenizerDefects,
  type FileTokenizer,
  type FileTokenizerEncoder,
  type PreTokenizerJson,
} from '../formats/tokenizer-from-gguf.js';
import type { MetaValue, ModelFile } from '../formats/types.js';
import { isSentencePieceBpe, mergesAsWritten, type HfTokenizer, type HfTokenizerJson } from '../zoo/tokenizer.js';
import { commonDims, isGpt2, type Arch, type HfConfig } from '../zoo/types.js';
import type { CheckResult, Verdict, VerdictCode } from './codes.js';

/**
 * Strings every artifact tokenizer must split into the source tokenizer's ids, beyond the prompts:
 * leading, repeated and trailing spaces, tabs and newlines, digits (runs, decimals, digit triples),
 * contractions, punctuation runs after a space, mixed case, and multi-byte UTF-8 (accents, CJK, emoji).
 * Each one separates pre-tokenizers that agree on plain words (llama.cpp's 'default' splits ` 2` into
 * ` ` + `2`, 'qwen2' splits digits, GPT-2 keeps ` 12345` whole); a leading U+FEFF (a token of its own in
 * Llama-2, lost by a decoder that strips BOMs), and characters only byte fallback can spell separate SPM
 * vocabularies (scores, byte tokens).
 */
export const EDGE_PROBES = [
  ' leading space',
  'two  spaces   three',
  'trailing space ',
  'tab\tand\nnewline\n\nblank line',
  'numbers 7 42 12345 3.14159 1,000,000',
  "don't you'll we've I'm it's",
  'a (b) [c] {d} "quoted" x+y=z; p<q>r ~|^$ #@%&*',
  'Hello!!! What?! ... --- ___',
  'UPPER lower MiXeD CamelCase',
  'café naïve Straße Ωmega 日本語 🤖👍',
  '    indented(x):\n\treturn x**2',
  '\ufeffa leading byte-order mark',
  'digit runs 3333333 12345678901 0.000001',
  '中文测试：你好，世界！ 한국어 текст',
  'rare bytes ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🦙🦙 \u200d',
] as const;

/** The source the artifact's metadata is judged against. */
export interface MetadataSource {
  config: HfConfig;
  tokenizer: HfTokenizer;
  /** Prompts to probe the tokenizer with (default: DEFAULT_PROMPTS); EDGE_PROBES are always added. */
  prompts?: readonly string[];
}

const num = (v: MetaValue | undefined): number | undefined => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);
const show = (v: number): string => String(Number(v.toPrecision(7)));
/** Norm epsilons and RoPE bases are stored as f32 by every format here: compare at f32 precision. */
const sameF32 = (a: number, b: number): boolean => Math.fround(a) === Math.fround(b);
const ROPE_ARCHS: readonly Arch[] = ['llama', 'qwen2'];
const isRopeArch = (a: unknown): a is 'llama' | 'qwen2' => ROPE_ARCHS.some((r) => r === a);
/** llama.cpp's RoPE type per arch (`llama_model_rope_type`): llama NORM (needs permuted Q/K), qwen2 NEOX. */
const ROPE_TYPE_NAME: Record<'llama' | 'qwen2', string> = { llama: 'NORM', qwen2: 'NEOX' };
/**
 * APR `rope_type` codes (formats.md §2): 0 NORM, 2 NEOX. An APR made from an HF checkpoint keeps HF's
 * Q/K layout (no llama permute), and rotate_half on that layout is NEOX for llama as for qwen2
 * (formats.md §1.8: NORM only equals HF's rotation on permuted weights). aprender's `infer_rope_type`
 * names llama NORM, which is right only for weights imported from a (permuted) GGUF.
 */
const APR_ROPE_TYPE: Record<'llama' | 'qwen2', number> = { llama: 2, qwen2: 2 };
const APR_ROPE_NAME: Record<number, string> = { 0: 'NORM', 2: 'NEOX' };

/** One metadata field and what the source says it must hold. */
interface Expectation {
  key: string;
  code: VerdictCode;
  /** What the source calls it (config.json field). */
  sourceField: string;
  expected: number;
  /** Compare at f32 precision (epsilons, RoPE base). */
  isF32?: boolean;
  /** Absent is a failure; otherwise `defaultValue` (what the runtime assumes) is judged, or nothing when that is undefined too. */
  isRequired: boolean;
  defaultValue?: number;
  /** Why the default is what it is, for the message. */
  defaultNote?: string;
}

/** Evidence of a metadata verdict: what the source implies and what the file holds, plus any detail. */
type MismatchEvidence = { expected: unknown; got: unknown } & Record<string, unknown>;

class Collector {
  readonly verdicts: Verdict[] = [];
  keysChecked = 0;
  // Every metadata verdict is a mismatch: what the source implies against what the file holds (EVIDENCE_KIND).
  fail(code: VerdictCode, message: string, evidence: MismatchEvidence): void {
    this.verdicts.push({ code, status: 'fail', message, evidence });
  }
  warn(code: VerdictCode, message: string, evidence: MismatchEvidence): void {
    this.verdicts.push({ code, status: 'warn', message, evidence });
  }
  /** Judge one numeric field. */
  expect(meta: ReadonlyMap<string, MetaValue>, e: Expectation): void {
    this.keysChecked++;
    const raw = meta.get(e.key);
    const got = num(raw);
    const ev = { key: e.key, sourceField: e.sourceField, expected: e.expected };
    if (raw === undefined) {
      if (e.isRequired) {
        this.fail(e.code, `${e.key}: missing, expected ${show(e.expected)} (${e.sourceField})`, { ...ev, got: null });
      } else if (e.defaultValue !== undefined && !(e.isF32 ? sameF32(e.defaultValue, e.expected) : e.defaultValue === e.expected)) {
        this.fail(
          e.code,
          `${e.key}: missing, so ${e.defaultNote ?? 'the runtime'} assumes ${show(e.defaultValue)}; expected ${show(e.expected)} (${e.sourceField})`,
          {
            ...ev,
            got: null,
            assumed: e.defaultValue,
          },
        );
      }
      return;
    }
    if (got === undefined) {
      this.fail(e.code, `${e.key}: got ${JSON.stringify(raw)}, expected the number ${show(e.expected)} (${e.sourceField})`, {
        ...ev,
        got: String(raw),
      });
      return;
    }
    const same = e.isF32 ? sameF32(got, e.expected) : got === e.expected;
    if (!same) this.fail(e.code, `${e.key}: got ${show(got)}, expected ${show(e.expected)} (${e.sourceField})`, { ...ev, got });
  }
}

/** Whether the source tokenizer's post-processor prepends BOS (a TemplateProcessing, alone or in a Sequence, starting with a special token). */
function sourceAddsBos(json: unknown): boolean {
  // an HF tokenizer.json: every field read below is checked (=== / Array.isArray) before it is used
  const pp = (json as { post_processor?: { type?: string; processors?: unknown[] } | null }).post_processor;
  // processors of a Sequence are post-processors themselves: read as pp is
  const procs = (pp?.type === 'Sequence' && Array.isArray(pp.processors) ? pp.processors : pp ? [pp] : []) as {
    type?: string;
    single?: unknown[];
  }[];
  return procs.some((p) => {
    if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) return false;
    const first = p.single[0] as { SpecialToken?: unknown } | undefined; // a template piece: {SpecialToken} or {Sequence}
    return first !== undefined && first.SpecialToken !== undefined;
  });
}

/**
 * The source's token text per id, as convert_hf_to_gguf writes it: model vocab plus added tokens, a
 * non-special added token's U+2581 written as a space (llama.cpp expects user-defined tokens pre-normalized).
 */
function sourceVocab(json: HfTokenizerJson): Map<number, string> {
  const out = new Map<number, string>();
  for (const [tok, id] of Object.entries(json.model.vocab)) out.set(id, tok);
  for (const t of json.added_tokens ?? [])
    out.set(t.id, t.special === true || looksSpecial(t.content) ? t.content : t.content.replaceAll('\u2581', ' '));
  return out;
}

/** convert_hf_to_gguf's `does_token_look_special`: added tokens typed control although not marked special. */
function looksSpecial(t: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) ||
    (t.startsWith('<|') && t.endsWith('|>')) ||
    (t.startsWith('<｜') && t.endsWith('｜>')) ||
    (t.startsWith('<unused') && t.endsWith('>'))
  );
}

/** `tokenizer.ggml.model` the source calls for: 'llama' for a llama checkpoint's SentencePiece-derived BPE, else 'gpt2'. */
function expectedTokenizerModel(source: MetadataSource): 'llama' | 'gpt2' {
  return source.config.model_type === 'llama' && isSentencePieceBpe(source.tokenizer.json) ? 'llama' : 'gpt2';
}

const TOKEN_TYPE_NAME: Record<number, string> = { 1: 'normal', 2: 'unknown', 3: 'control', 4: 'user-defined', 5: 'unused', 6: 'byte' };

/**
 * The token types a file must declare, per id, from the source (llama.cpp's token attributes come from them:
 * a byte token typed normal decodes as the text `<0x41>`, a control token typed normal is printed). Each entry
 * lists the accepted types: the unknown token may be 2 (from tokenizer.model) or 3 (LlamaHfVocab).
 */
function expectedTokenTypes(source: MetadataSource, vocab: number, model: 'llama' | 'gpt2'): (readonly number[])[] {
  const json = source.tokenizer.json;
  const out: (readonly number[])[] = new Array<readonly number[]>(vocab).fill([5]);
  for (const [tok, id] of Object.entries(json.model.vocab))
    if (id < vocab) out[id] = model === 'llama' && /^<0x[0-9A-Fa-f]{2}>$/.test(tok) ? [6] : [1];
  const unk = json.model.unk_token;
  for (const a of json.added_tokens ?? []) {
    if (a.id >= vocab) continue;
    const isControl = a.special === true || looksSpecial(a.content);
    out[a.id] = model === 'llama' && a.content === unk ? [2, 3] : isControl ? [3] : [4];
  }
  return out;
}

/** Where a format keeps its tokenizer fields (for messages and evidence). */
interface TokenizerKeys {
  tokensKey: string;
  /** Where token types are (GGUF only: `apr import` stores none). */
  tokenTypeKey?: string;
  mergesKey: string;
  bosKey: string;
  eosKey: string;
  preKey: string;
}
const GGUF_TOKENIZER_KEYS: TokenizerKeys = {
  tokensKey: 'tokenizer.ggml.tokens',
  tokenTypeKey: 'tokenizer.ggml.token_type',
  mergesKey: 'tokenizer.ggml.merges',
  bosKey: 'tokenizer.ggml.bos_token_id',
  eosKey: 'tokenizer.ggml.eos_token_id',
  preKey: 'tokenizer.ggml.pre',
};
const APR_TOKENIZER_KEYS: TokenizerKeys = {
  tokensKey: 'tokenizer.vocabulary',
  mergesKey: 'tokenizer.merges',
  bosKey: 'tokenizer.bos_token_id',
  eosKey: 'tokenizer.eos_token_id',
  preKey: 'tokenizer.pre_type',
};

/** How the file's tokenizer is rebuilt to encode the probes: llama.cpp's regexes, a whole encoder, or why it cannot be. */
type TokenizerRecipe =
  | { tokenizer: PreTokenizerJson; ignoreMerges: boolean; addBos: boolean; label: string }
  | { json: (t: FileTokenizer) => FileTokenizerEncoder; label: string }
  | { error: string; isFatal: boolean };

/**
 * The source's tokenizer.json with the file's vocabulary and merges in place of its own (normalizer,
 * pre-tokenizer, byte fallback and decoder kept; added tokens at the file's ids): how a runtime that reads
 * only vocabulary and merges from the file (APR) tokenizes, when the file declares no pre-tokenizer.
 */
function sourceShapedJson(src: HfTokenizerJson, t: FileTokenizer): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  t.tokens.forEach((tok, id) => {
    if (!Object.hasOwn(vocab, tok)) vocab[tok] = id;
  });
  const merges = t.merges.flatMap((m) => {
    const i = m.indexOf(' ', 1);
    return i < 0 ? [] : [[m.slice(0, i), m.slice(i + 1)]];
  });
  const added = (src.added_tokens ?? []).flatMap((a) => (Object.hasOwn(vocab, a.content) ? [{ ...a, id: vocab[a.content] }] : []));
  return { ...src, added_tokens: added, post_processor: null, model: { ...src.model, vocab, merges } };
}

const abbreviate = (ids: number[]): string =>
  ids.length <= 24 ? `[${ids.join(', ')}]` : `[${ids.slice(0, 24).join(', ')}, … ${ids.length} ids]`;

/**
 * F-META-004: the artifact's tokenizer against the source's. Structure first (present, vocab size,
 * duplicates, the vocabulary id by id, the merges in rank order, BOS/EOS), then behaviour: the probe
 * strings encoded with the artifact's own vocabulary, merges and pre-tokenizer (as llama.cpp would
 * run them) must give the source tokenizer's ids.
 */
function checkTokenizer(
  c: Collector,
  t: FileTokenizer | undefined,
  where: TokenizerKeys,
  source: MetadataSource,
  pre: TokenizerRecipe,
): { probes: number; probeMismatches: number } {
  const code = 'F-META-004';
  const cfg = source.config;
  const d = commonDims(cfg);
  if (t === undefined) {
    c.fail(code, `${where.tokensKey}: missing: no tokenizer in the file, expected ${d.vocab} tokens`, {
      key: where.tokensKey,
      expected: d.vocab,
      got: null,
      expectedVocab: d.vocab,
    });
    return { probes: 0, probeMismatches: 0 };
  }
  c.keysChecked += 4;
  if (t.tokens.length !== d.vocab) {
    c.fail(code, `${where.tokensKey}: got ${t.tokens.length} tokens, expected ${d.vocab} (vocab_size)`, {
      key: where.tokensKey,
      got: t.tokens.length,
      expected: d.vocab,
    });
  }
  const defects = tokenizerDefects(t);
  if (defects.duplicateTokens.length > 0) {
    const ex = defects.duplicateTokens.slice(0, 5);
    c.fail(
      code,
      `${where.tokensKey}: ${defects.duplicateTokens.length} duplicate token(s), e.g. ${ex.map((x) => `${JSON.stringify(x.token)} at ids ${x.ids.join(', ')}`).join('; ')} (llama.cpp refuses to load a vocabulary with duplicates)`,
      {
        expected: 'every token once',
        got: `${defects.duplicateTokens.length} duplicate(s)`,
        duplicateTokens: defects.duplicateTokens.slice(0, 50),
        count: defects.duplicateTokens.length,
      },
    );
  }
  if (defects.duplicateMerges.length > 0 || defects.malformedMerges.length > 0) {
    c.fail(
      code,
      `${where.mergesKey}: ${defects.duplicateMerges.length} duplicated, ${defects.malformedMerges.length} malformed${defects.duplicateMerges[0] ? `, e.g. ${JSON.stringify(defects.duplicateMerges[0].merge)} at ranks ${defects.duplicateMerges[0].ranks.join(', ')}` : ''}`,
      {
        expected: 'every merge once, as "a b"',
        got: `${defects.duplicateMerges.length} duplicated, ${defects.malformedMerges.length} malformed`,
        duplicateMerges: defects.duplicateMerges.slice(0, 50),
        malformedMerges: defects.malformedMerges.slice(0, 50),
      },
    );
  }
  // The vocabulary, id by id: a permuted or shifted vocabulary decodes every generated id wrongly.
  const srcVocab = sourceVocab(source.tokenizer.json);
  const wrongIds: { id: number; got: string | null; expected: string }[] = [];
  for (const [id, tok] of srcVocab) {
    const got = t.tokens[id];
    if (got !== tok) wrongIds.push({ id, got: got ?? null, expected: tok });
  }
  const w = wrongIds[0];
  if (w !== undefined) {
    c.fail(
      code,
      `${where.tokensKey}: ${wrongIds.length} of ${srcVocab.size} source tokens are at another id or missing, e.g. id ${w.id}: got ${JSON.stringify(w.got)}, expected ${JSON.stringify(w.expected)}`,
      {
        expected: w.expected,
        got: w.got,
        mismatches: wrongIds.slice(0, 50),
        count: wrongIds.length,
      },
    );
  }
  if (t.tokenTypes !== undefined && where.tokenTypeKey !== undefined) {
    const want = expectedTokenTypes(source, d.vocab, t.model === 'llama' ? 'llama' : 'gpt2');
    const wrong: { id: number; token: string | null; got: number | null; expected: readonly number[] }[] = [];
    want.forEach((ok, id) => {
      const got = t.tokenTypes?.[id];
      if (got === undefined || !ok.includes(got)) wrong.push({ id, token: t.tokens[id] ?? null, got: got ?? null, expected: ok });
    });
    const w = wrong[0];
    if (w !== undefined) {
      const name = (x: number | null): string => (x === null ? 'missing' : `${x} (${TOKEN_TYPE_NAME[x] ?? 'undefined'})`);
      c.fail(
        code,
        `${where.tokenTypeKey}: ${wrong.length} id(s) typed unlike the source, e.g. id ${w.id} ${JSON.stringify(w.token)}: got ${name(w.got)}, expected ${w.expected.map(name).join(' or ')}`,
        {
          key: where.tokenTypeKey,
          expected: w.expected,
          got: w.got,
          mismatches: wrong.slice(0, 50),
          count: wrong.length,
        },
      );
    }
  }
  // SentencePiece in GGUF: no merges (convert_hf_to_gguf writes none); the scores are the merge priority.
  const isSpmGguf = t.model === 'llama' && where.tokenTypeKey !== undefined;
  if (isSpmGguf && (t.scores === undefined || t.scores.length !== t.tokens.length)) {
    c.fail(
      code,
      `tokenizer.ggml.scores: ${t.scores === undefined ? 'missing' : `${t.scores.length} scores for ${t.tokens.length} tokens`}: llama.cpp's SentencePiece tokenizer merges by score (all 0 without them)`,
      {
        key: 'tokenizer.ggml.scores',
        got: t.scores?.length ?? null,
        expected: t.tokens.length,
      },
    );
  }
  // The merges, rank by rank (BPE applies them in this order).
  const want = isSpmGguf ? [] : mergesAsWritten(source.tokenizer.json);
  const gotMerges = t.merges;
  let firstDiff = -1;
  for (let i = 0; i < Math.max(want.length, gotMerges.length); i++) {
    if (want[i] !== gotMerges[i]) {
      firstDiff = i;
      break;
    }
  }
  if (firstDiff >= 0) {
    const wantSet = new Set(want);
    const gotSet = new Set(gotMerges);
    const missing = want.filter((m) => !gotSet.has(m));
    const extra = gotMerges.filter((m) => !wantSet.has(m));
    c.fail(
      code,
      `${where.mergesKey}: got ${gotMerges.length}, expected ${want.length}; first difference at rank ${firstDiff}: got ${JSON.stringify(gotMerges[firstDiff] ?? null)}, expected ${JSON.stringify(want[firstDiff] ?? null)} (${missing.length} missing, ${extra.length} not in the source)`,
      {
        got: gotMerges.length,
        expected: want.length,
        firstDifferentRank: firstDiff,
        missing: missing.slice(0, 20),
        extra: extra.slice(0, 20),
      },
    );
  }
  for (const [key, name, got, expected] of [
    [where.bosKey, 'bos_token_id', t.bosId, cfg.bos_token_id],
    [where.eosKey, 'eos_token_id', t.eosId, cfg.eos_token_id],
  ] as const) {
    if (got !== expected)
      c.fail(code, `${key}: got ${got ?? 'missing'}, expected ${expected} (${name})`, { key, got: got ?? null, expected });
  }
  if ('error' in pre) {
    (pre.isFatal ? c.fail.bind(c) : c.warn.bind(c))(code, `${where.preKey}: ${pre.error}`, {
      key: where.preKey,
      expected: 'a pre-tokenizer llama.cpp knows',
      got: t.pre ?? null,
    });
    return { probes: 0, probeMismatches: 0 };
  }
  let encoder: FileTokenizerEncoder;
  try {
    encoder = 'json' in pre ? pre.json(t) : fileTokenizerEncoder(t, pre.tokenizer, { ignoreMerges: pre.ignoreMerges, addBos: pre.addBos });
  } catch (e) {
    c.fail(code, `${where.tokensKey}: the file's tokenizer cannot be built: ${errorMessage(e)}`, {
      expected: 'a tokenizer llama.cpp can build',
      got: errorMessage(e),
      error: errorMessage(e),
    });
    return { probes: 0, probeMismatches: 0 };
  }
  const addsBos = sourceAddsBos(source.tokenizer.json);
  const probes = [...(source.prompts ?? DEFAULT_PROMPTS), ...EDGE_PROBES];
  const mismatches: { probe: string; got: number[]; expected: number[]; firstDifferentIndex: number }[] = [];
  for (const probe of probes) {
    const expected = addsBos ? [cfg.bos_token_id, ...source.tokenizer.encode(probe)] : source.tokenizer.encode(probe);
    const got = encoder.encode(probe);
    let i = 0;
    while (i < Math.min(got.length, expected.length) && got[i] === expected[i]) i++;
    if (i < got.length || i < expected.length) mismatches.push({ probe, got, expected, firstDifferentIndex: i });
  }
  const m = mismatches[0];
  if (m !== undefined) {
    const bosNote =
      encoder.addBos !== addsBos
        ? ` The file ${encoder.addBos ? 'prepends' : 'does not prepend'} BOS; the source ${addsBos ? 'does' : 'does not'}.`
        : '';
    c.fail(
      code,
      `token ids differ on ${mismatches.length} of ${probes.length} probe strings (${where.preKey} '${t.pre ?? ''}' → ${pre.label}): ${JSON.stringify(m.probe)} got ${abbreviate(m.got)}, expected ${abbreviate(m.expected)}.${bosNote}`,
      {
        key: where.preKey,
        expected: m.expected,
        got: m.got,
        pre: t.pre ?? null,
        preTokenizer: pre.label,
        fileAddsBos: encoder.addBos,
        sourceAddsBos: addsBos,
        mismatches,
      },
    );
  }
  return { probes: probes.length, probeMismatches: mismatches.length };
}

/**
 * The declared architecture: -003 when a llama/qwen2 swap changes the RoPE type the format derives from
 * it (GGUF), -001 otherwise. Returns the arch the other keys are read under.
 */
function checkArchitecture(c: Collector, declared: MetaValue | undefined, key: string, expected: Arch, isRopeImplied: boolean): string {
  c.keysChecked++;
  const got = typeof declared === 'string' ? declared : undefined;
  if (got === expected) return expected;
  if (isRopeImplied && isRopeArch(got) && isRopeArch(expected)) {
    const g = got;
    const e = expected;
    c.fail(
      'F-META-003',
      `${key}: got '${got}', expected '${expected}' (model_type): the architecture implies RoPE type ${ROPE_TYPE_NAME[g]}, the source needs ${ROPE_TYPE_NAME[e]}`,
      {
        key,
        got,
        expected,
        gotRopeType: ROPE_TYPE_NAME[g],
        expectedRopeType: ROPE_TYPE_NAME[e],
      },
    );
    return got;
  }
  c.fail('F-META-001', `${key}: got ${got === undefined ? 'missing' : `'${got}'`}, expected '${expected}' (model_type)`, {
    key,
    got: got ?? null,
    expected,
  });
  return expected;
}

/** GGUF: llama.cpp's keys per arch (formats.md §1.7; convert_hf_to_gguf `set_gguf_parameters`). */
function checkGgufMetadata(c: Collector, file: ModelFile, source: MetadataSource): { probes: number; probeMismatches: number } {
  const cfg = source.config;
  const meta = file.metadata;
  const d = commonDims(cfg);
  const a = checkArchitecture(c, meta.get('general.architecture'), 'general.architecture', cfg.model_type, true);
  const k = (s: string) => `${a}.${s}`;
  const defaultHeadDim = d.hidden / d.heads;
  const common: Expectation[] = [
    {
      key: k('embedding_length'),
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_embd' : 'hidden_size',
      expected: d.hidden,
      isRequired: true,
    },
    {
      key: k('block_count'),
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_layer' : 'num_hidden_layers',
      expected: d.layers,
      isRequired: true,
    },
    {
      key: k('attention.head_count'),
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_head' : 'num_attention_heads',
      expected: d.heads,
      isRequired: true,
    },
    {
      key: k('attention.head_count_kv'),
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_head' : 'num_key_value_heads',
      expected: d.kvHeads,
      isRequired: false,
      defaultValue: d.heads,
      defaultNote: 'llama.cpp (head_count)',
    },
    {
      key: k('feed_forward_length'),
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_inner (4·n_embd)' : 'intermediate_size',
      expected: d.ffn,
      isRequired: true,
    },
    {
      key: k('context_length'),
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_positions' : 'max_position_embeddings',
      expected: d.maxPositions,
      isRequired: true,
    },
    { key: k('vocab_size'), code: 'F-META-001', sourceField: 'vocab_size', expected: d.vocab, isRequired: false },
  ];
  for (const e of common) c.expect(meta, e);
  if (isGpt2(cfg)) {
    // GPT-2 is LayerNorm: llama.cpp reads `gpt2.attention.layer_norm_epsilon` and fails without it (paiml/aprender#277).
    const rmsKey = k('attention.layer_norm_rms_epsilon');
    const key = k('attention.layer_norm_epsilon');
    if (!meta.has(key) && meta.has(rmsKey)) {
      c.keysChecked++;
      c.fail(
        'F-META-002',
        `${key}: missing, expected ${show(cfg.layer_norm_epsilon)} (layer_norm_epsilon); the file has the RMSNorm key ${rmsKey} instead`,
        { key, got: null, expected: cfg.layer_norm_epsilon, foundKey: rmsKey },
      );
    } else {
      c.expect(meta, {
        key,
        code: 'F-META-002',
        sourceField: 'layer_norm_epsilon',
        expected: cfg.layer_norm_epsilon,
        isF32: true,
        isRequired: true,
      });
    }
  } else {
    c.expect(meta, {
      key: k('attention.layer_norm_rms_epsilon'),
      code: 'F-META-002',
      sourceField: 'rms_norm_eps',
      expected: cfg.rms_norm_eps,
      isF32: true,
      isRequired: true,
    });
    c.expect(meta, {
      key: k('attention.key_length'),
      code: 'F-META-001',
      sourceField: 'head_dim',
      expected: d.headDim,
      isRequired: false,
      defaultValue: defaultHeadDim,
      defaultNote: 'llama.cpp (embedding_length / head_count)',
    });
    c.expect(meta, {
      key: k('attention.value_length'),
      code: 'F-META-001',
      sourceField: 'head_dim',
      expected: d.headDim,
      isRequired: false,
      defaultValue: defaultHeadDim,
      defaultNote: 'llama.cpp (embedding_length / head_count)',
    });
    c.expect(meta, {
      key: k('rope.freq_base'),
      code: 'F-META-003',
      sourceField: 'rope_theta',
      expected: cfg.rope_theta,
      isF32: true,
      isRequired: false,
      defaultValue: 10000,
      defaultNote: 'llama.cpp',
    });
    c.expect(meta, {
      key: k('rope.dimension_count'),
      code: 'F-META-003',
      sourceField: 'head_dim',
      expected: d.headDim,
      isRequired: false,
      defaultValue: defaultHeadDim,
      defaultNote: 'llama.cpp (embedding_length / head_count)',
    });
  }
  const t = ggufTokenizer(meta);
  const wantModel = expectedTokenizerModel(source);
  let pre: TokenizerRecipe;
  if (t !== undefined && t.model !== wantModel) {
    const what = wantModel === 'llama' ? 'a SentencePiece-derived vocabulary: scores and byte tokens' : 'a byte-level BPE: merges';
    pre = {
      error: `tokenizer.ggml.model is ${JSON.stringify(t.model ?? null)}, expected "${wantModel}" (the source is ${what})`,
      isFatal: true,
    };
  } else if (t?.model === 'llama') {
    // llama.cpp's SPM tokenizer: no pre-tokenizer regexes; BOS added unless tokenizer.ggml.add_bos_token says no.
    pre = {
      json: (f) => fileTokenizerEncoder(f, {}, { ignoreMerges: false, addBos: f.addBos ?? true }),
      label: "llama.cpp's SentencePiece tokenizer (scores, byte fallback)",
    };
  } else {
    const r = resolveLlamaCppPre(t?.pre);
    pre =
      r.kind === 'modelled'
        ? {
            tokenizer: regexPreTokenizer(r.regexes),
            ignoreMerges: r.ignoreMerges,
            addBos: t?.addBos ?? r.addBos,
            label: `llama.cpp pre-tokenizer '${r.family}'`,
          }
        : r.kind === 'unknown'
          ? { error: `got '${r.name}': llama.cpp refuses it (unknown pre-tokenizer type)`, isFatal: true }
          : {
              error: `'${r.name}' is a llama.cpp pre-tokenizer whose regexes this harness does not model; probe-string ids not checked`,
              isFatal: false,
            };
  }
  return checkTokenizer(c, t, GGUF_TOKENIZER_KEYS, source, pre);
}

/** APR v2: aprender's `AprV2Metadata` JSON fields (formats.md §2). */
function checkAprMetadata(c: Collector, file: ModelFile, source: MetadataSource): { probes: number; probeMismatches: number } {
  const cfg = source.config;
  const meta = file.metadata;
  const d = commonDims(cfg);
  const a = checkArchitecture(
    c,
    meta.get('architecture') ?? meta.get('model_type'),
    meta.has('architecture') ? 'architecture' : 'model_type',
    cfg.model_type,
    false,
  );
  const fields: Expectation[] = [
    { key: 'hidden_size', code: 'F-META-001', sourceField: isGpt2(cfg) ? 'n_embd' : 'hidden_size', expected: d.hidden, isRequired: true },
    {
      key: 'num_layers',
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_layer' : 'num_hidden_layers',
      expected: d.layers,
      isRequired: true,
    },
    {
      key: 'num_heads',
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_head' : 'num_attention_heads',
      expected: d.heads,
      isRequired: true,
    },
    {
      key: 'num_kv_heads',
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_head' : 'num_key_value_heads',
      expected: d.kvHeads,
      isRequired: false,
      defaultValue: d.heads,
      defaultNote: 'a reader (num_heads)',
    },
    { key: 'vocab_size', code: 'F-META-001', sourceField: 'vocab_size', expected: d.vocab, isRequired: true },
    {
      key: 'intermediate_size',
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_inner (4·n_embd)' : 'intermediate_size',
      expected: d.ffn,
      isRequired: true,
    },
    {
      key: 'max_position_embeddings',
      code: 'F-META-001',
      sourceField: isGpt2(cfg) ? 'n_positions' : 'max_position_embeddings',
      expected: d.maxPositions,
      isRequired: true,
    },
    { key: 'head_dim', code: 'F-META-001', sourceField: 'head_dim', expected: d.headDim, isRequired: false },
  ];
  for (const e of fields) c.expect(meta, e);
  if (isGpt2(cfg)) {
    const key = ['layer_norm_eps', 'layer_norm_epsilon', 'rms_norm_eps'].find((x) => meta.has(x)) ?? 'rms_norm_eps';
    c.expect(meta, {
      key,
      code: 'F-META-002',
      sourceField: 'layer_norm_epsilon',
      expected: cfg.layer_norm_epsilon,
      isF32: true,
      isRequired: true,
    });
  } else {
    c.expect(meta, {
      key: 'rms_norm_eps',
      code: 'F-META-002',
      sourceField: 'rms_norm_eps',
      expected: cfg.rms_norm_eps,
      isF32: true,
      isRequired: true,
    });
    c.expect(meta, {
      key: 'rope_theta',
      code: 'F-META-003',
      sourceField: 'rope_theta',
      expected: cfg.rope_theta,
      isF32: true,
      isRequired: true,
    });
    // Absent, a reader infers it from the architecture (aprender `infer_rope_type`: qwen2 NEOX, llama NORM).
    const want = APR_ROPE_TYPE[cfg.model_type];
    c.expect(meta, {
      key: 'rope_type',
      code: 'F-META-003',
      sourceField: `HF-layout Q/K → ${APR_ROPE_NAME[want] ?? want}`,
      expected: want,
      isRequired: false,
      defaultValue: a === 'qwen2' ? 2 : 0,
      defaultNote: 'aprender (from the architecture)',
    });
  }
  const t = aprTokenizer(meta);
  let pre: TokenizerRecipe;
  if (t?.pre !== undefined) {
    const r = resolveLlamaCppPre(t.pre);
    pre =
      r.kind === 'modelled'
        ? {
            tokenizer: regexPreTokenizer(r.regexes),
            ignoreMerges: r.ignoreMerges,
            addBos: t.addBos ?? r.addBos,
            label: `llama.cpp pre-tokenizer '${r.family}'`,
          }
        : r.kind === 'unknown'
          ? {
              error: `got '${r.name}': llama.cpp refuses it (unknown pre-tokenizer type), and an export to GGUF carries it over`,
              isFatal: true,
            }
          : {
              error: `'${r.name}' is a llama.cpp pre-tokenizer whose regexes this harness does not model; probe-string ids not checked`,
              isFatal: false,
            };
  } else {
    // No declared pre-tokenizer: the vocabulary and merges are judged under the source's own pre-tokenizer.
    // APR declares no add-BOS flag: a reader follows the source's post-processor.
    const addsBos = (f: FileTokenizer): boolean => f.addBos ?? sourceAddsBos(source.tokenizer.json);
    pre = {
      json: (f) => encoderFromJson(sourceShapedJson(source.tokenizer.json, f), addsBos(f) ? f.bosId : undefined),
      label: "the source's normalizer and pre-tokenizer (the file declares none)",
    };
  }
  return checkTokenizer(c, t, APR_TOKENIZER_KEYS, source, pre);
}

/**
 * L1: the artifact's metadata against the source config and tokenizer. F-META-001 hyperparameters,
 * F-META-002 norm epsilon (f32 precision), F-META-003 RoPE base and type (GGUF: the type is implied by
 * `general.architecture`, so a qwen2 model declared llama — or the reverse — is -003), F-META-004 the
 * tokenizer (vocabulary, merges, BOS/EOS, duplicates, pre-tokenizer, and the ids of the prompts plus
 * EDGE_PROBES encoded with the file's own tokenizer). Messages name the key, got and expected.
 *
 * GGUF and APR carry metadata; a safetensors file (or an unreadable one) has none to judge: it passes
 * with `metrics.keysChecked = 0`. Warn verdicts (a pre-tokenizer llama.cpp knows but this harness does
 * not model) do not fail the check.
 */
export function checkMetadata(file: ModelFile, source: MetadataSource): CheckResult {
  const c = new Collector();
  let probes = { probes: 0, probeMismatches: 0 };
  if (file.format === 'gguf') probes = checkGgufMetadata(c, file, source);
  else if (file.format === 'apr') probes = checkAprMetadata(c, file, source);
  else return { suite: 'metadata', status: 'pass', verdicts: [], metrics: { keysChecked: 0, probesChecked: 0 } };
  return {
    suite: 'metadata',
    status: statusOf(c.verdicts),
    verdicts: c.verdicts,
    metrics: { keysChecked: c.keysChecked, probesChecked: probes.probes, probeMismatches: probes.probeMismatches },
  };
}
