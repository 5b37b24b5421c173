import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VerdictCode } from '../../src/checks/codes.js';
import { checkMetadata, EDGE_PROBES } from '../../src/checks/metadata.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readModelFile } from '../../src/formats/read-model.js';
import {
  fileTokenizerEncoder,
  ggufTokenizer,
  regexPreTokenizer,
  resolveLlamaCppPre,
  tokenizerDefects,
  tokenizerFromGguf,
} from '../../src/formats/tokenizer-from-gguf.js';
import type { ModelFile } from '../../src/formats/types.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';
import type { HfConfig } from '../../src/zoo/types.js';

const MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;
type Model = (typeof MODELS)[number];
const workDir = mkdtempSync(join(tmpdir(), 'tmgt-metadata-'));
const sources = new Map<Model, { dir: string; config: HfConfig; tokenizer: HfTokenizer }>();
const opened: FileByteSource[] = [];

beforeAll(async () => {
  for (const m of MODELS) {
    const dir = await buildModel(findModelSpec(m));
    sources.set(m, { dir, config: loadCheckpoint(dir).config, tokenizer: HfTokenizer.fromDir(dir) });
  }
}, 120_000);

afterAll(() => {
  for (const s of opened) s.close();
});

function source(m: Model): { dir: string; config: HfConfig; tokenizer: HfTokenizer } {
  const s = sources.get(m);
  if (!s) throw new Error(`${m} was not built`);
  return s;
}

// ---------------------------------------------------------------------------------------------------
// Mutate callbacks are written against the plan's documented shape only (src/converters/plan.ts:
// tensors[] of {name, role?, shape, dtype, values, data?}; GGUF `kvs[]` of {key, type, value}; APR
// `metadata`), and fail loudly if it changes, instead of silently mutating nothing.

interface KvLike {
  key: string;
  type: string;
  value: unknown;
}
interface PlanLike {
  tensors: unknown[];
  kvs?: KvLike[];
  metadata?: Record<string, unknown>;
}

function asPlan(plan: unknown): PlanLike {
  const p = plan as Partial<PlanLike> | null;
  if (!p || !Array.isArray(p.tensors)) throw new Error('the reference plan changed shape: no tensors[]');
  return p as PlanLike;
}
function kvsOf(plan: unknown): KvLike[] {
  const p = asPlan(plan);
  if (!Array.isArray(p.kvs) || p.kvs.some((k) => typeof k?.key !== 'string'))
    throw new Error('the GGUF plan changed shape: no kvs[] of {key, type, value}');
  return p.kvs;
}
function kvOf(plan: unknown, key: string): KvLike {
  const kv = kvsOf(plan).find((k) => k.key === key);
  if (!kv) throw new Error(`the GGUF plan has no key ${key}`);
  return kv;
}
function removeKv(plan: unknown, key: string): void {
  const kvs = kvsOf(plan);
  const i = kvs.findIndex((k) => k.key === key);
  if (i < 0) throw new Error(`the GGUF plan has no key ${key}`);
  kvs.splice(i, 1);
}
function aprMeta(plan: unknown): Record<string, unknown> {
  const p = asPlan(plan);
  if (!p.metadata || typeof p.metadata !== 'object') throw new Error('the APR plan changed shape: no metadata object');
  return p.metadata;
}

type Mutate = (plan: unknown) => void;

function convert(model: Model, target: string, mutate?: Mutate): ModelFile {
  const out = join(workDir, `${model}.${target.replace('/', '_')}.${opened.length}`);
  convertCheckpoint(source(model).dir, parseTarget(target), out, mutate);
  const src = new FileByteSource(out);
  opened.push(src);
  return readModelFile(src);
}

function check(model: Model, file: ModelFile) {
  const s = source(model);
  return checkMetadata(file, { config: s.config, tokenizer: s.tokenizer });
}

const codes = (r: { verdicts: { code: VerdictCode; status: string }[] }): VerdictCode[] =>
  [...new Set(r.verdicts.filter((v) => v.status === 'fail').map((v) => v.code))].sort();

/** The pre-tokenizer llama.cpp would use for the zoo's GPT-2-regex byte-level BPE: llama.cpp's 'gpt-2'. */
const usePre =
  (pre: string): Mutate =>
  (plan) => {
    kvOf(plan, 'tokenizer.ggml.pre').value = pre;
  };

describe('checkMetadata on the reference converter', () => {
  const GGUF_TARGETS = ['gguf/f32', 'gguf/f16', 'gguf/q8_0', 'gguf/q4_k'] as const;
  for (const model of MODELS) {
    for (const target of GGUF_TARGETS) {
      it(`${model} × ${target}: hyperparameters, eps and RoPE pass; the tokenizer passes under the pre-tokenizer that matches the source`, () => {
        const file = convert(model, target);
        const r = check(model, file);
        expect(r.metrics?.['keysChecked']).toBeGreaterThan(10);
        expect(r.metrics?.['probesChecked']).toBe(4 + EDGE_PROBES.length);
        const pre = ggufTokenizer(file.metadata)?.pre;
        const family = resolveLlamaCppPre(pre);
        if (family.kind === 'modelled' && family.family !== 'gpt2') {
          // Known reference-converter bug (src/converters/reference.ts TOKENIZER_PRE is keyed by arch:
          // llama 'default', qwen2 'qwen2'): the zoo tokenizer is GPT-2's byte-level regex, which llama.cpp
          // runs only under 'gpt-2'. 'default' and 'qwen2' split ` 2` into ` ` + `2`, so llama.cpp would
          // tokenize "What is 2+2? Answer:" differently from the source. Until the reference writes
          // 'gpt-2' for this tokenizer, exactly that verdict is expected, and nothing else.
          expect(r.verdicts.map((v) => v.code)).toEqual(['F-META-004']);
          expect(r.verdicts[0]?.evidence['pre']).toBe(pre);
          expect(JSON.stringify(r.verdicts[0]?.evidence['mismatches'])).toContain('What is 2+2? Answer:');
          const fixed = check(model, convert(model, target, usePre('gpt-2')));
          expect(fixed.verdicts).toEqual([]);
        } else {
          expect(r.verdicts).toEqual([]);
          expect(r.status).toBe('pass');
        }
      });
    }
    for (const target of ['apr/f32', 'apr/int8'] as const) {
      it(`${model} × ${target}: APR JSON fields and the embedded tokenizer pass`, () => {
        const r = check(model, convert(model, target));
        expect(r.verdicts).toEqual([]);
        expect(r.metrics?.['keysChecked']).toBeGreaterThan(10);
        expect(r.metrics?.['probeMismatches']).toBe(0);
      });
    }
  }

  it('safetensors has no metadata to judge: pass, with nothing checked', () => {
    const r = check('llama-tiny', convert('llama-tiny', 'safetensors/f16'));
    expect(r).toEqual({ suite: 'metadata', status: 'pass', verdicts: [], metrics: { keysChecked: 0, probesChecked: 0 } });
  });
});

/** A bug a converter writes into the metadata, and the verdict codes that must catch it (exactly). */
interface MetaMutant {
  name: string;
  model: Model;
  target: string;
  mutate: Mutate;
  expected: VerdictCode[];
  /** Text the first verdict's message must contain (key, got, expected). */
  message?: RegExp;
}

/** Mutants on GGUFs whose tokenizer is otherwise right (pre 'gpt-2', see above), so only the injected bug shows. */
const withPre =
  (m: Mutate): Mutate =>
  (plan) => {
    usePre('gpt-2')(plan);
    m(plan);
  };

const META_MUTANTS: readonly MetaMutant[] = [
  {
    name: 'rms_norm_eps 1e-6 for a 1e-5 source (llama.cpp#2373)',
    model: 'llama-tiny',
    target: 'gguf/q8_0',
    mutate: withPre((p) => void (kvOf(p, 'llama.attention.layer_norm_rms_epsilon').value = 1e-6)),
    expected: ['F-META-002'],
    message: /llama\.attention\.layer_norm_rms_epsilon: got 0\.000001, expected 0\.00001 \(rms_norm_eps\)/,
  },
  {
    name: 'GPT-2 written with the RMSNorm eps key (paiml/aprender#277)',
    model: 'gpt2-tiny',
    target: 'gguf/f32',
    mutate: (p) => void (kvOf(p, 'gpt2.attention.layer_norm_epsilon').key = 'gpt2.attention.layer_norm_rms_epsilon'),
    expected: ['F-META-002'],
    message: /gpt2\.attention\.layer_norm_epsilon: missing.*layer_norm_rms_epsilon instead/,
  },
  {
    name: 'rope.freq_base 1e4 for a qwen2 source with 1e6',
    model: 'qwen2-tiny',
    target: 'gguf/q8_0',
    mutate: withPre((p) => void (kvOf(p, 'qwen2.rope.freq_base').value = 10000)),
    expected: ['F-META-003'],
    message: /qwen2\.rope\.freq_base: got 10000, expected 1000000 \(rope_theta\)/,
  },
  {
    name: 'qwen2 declared as llama: NORM RoPE on NEOX weights (llama.cpp PR 13260, candle#3410)',
    model: 'qwen2-tiny',
    target: 'gguf/f32',
    mutate: withPre((p) => {
      kvOf(p, 'general.architecture').value = 'llama';
      for (const kv of kvsOf(p)) if (kv.key.startsWith('qwen2.')) kv.key = `llama.${kv.key.slice('qwen2.'.length)}`;
    }),
    expected: ['F-META-003'],
    message: /general\.architecture: got 'llama', expected 'qwen2'.*NORM.*NEOX/,
  },
  {
    name: 'llama declared as qwen2: NEOX RoPE on permuted weights (aprender PR 2084)',
    model: 'llama-tiny',
    target: 'gguf/f32',
    mutate: withPre((p) => {
      kvOf(p, 'general.architecture').value = 'qwen2';
      for (const kv of kvsOf(p)) if (kv.key.startsWith('llama.')) kv.key = `qwen2.${kv.key.slice('llama.'.length)}`;
    }),
    expected: ['F-META-003'],
  },
  {
    name: 'head_count_kv = head_count (GQA lost)',
    model: 'llama-tiny',
    target: 'gguf/q8_0',
    mutate: withPre((p) => void (kvOf(p, 'llama.attention.head_count_kv').value = 6)),
    expected: ['F-META-001'],
    message: /llama\.attention\.head_count_kv: got 6, expected 2 \(num_key_value_heads\)/,
  },
  {
    name: 'GPT-2 hidden size written as head_dim (paiml/aprender#235)',
    model: 'gpt2-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => void (kvOf(p, 'gpt2.embedding_length').value = 32),
    expected: ['F-META-001'],
    message: /gpt2\.embedding_length: got 32, expected 96 \(n_embd\)/,
  },
  {
    name: 'GPT-2 embedding_length not exported (paiml/aprender#236)',
    model: 'gpt2-tiny',
    target: 'gguf/f32',
    mutate: (p) => removeKv(p, 'gpt2.embedding_length'),
    expected: ['F-META-001'],
    message: /gpt2\.embedding_length: missing, expected 96/,
  },
  {
    name: 'context_length from the wrong field',
    model: 'qwen2-tiny',
    target: 'gguf/f32',
    mutate: withPre((p) => void (kvOf(p, 'qwen2.context_length').value = 2048)),
    expected: ['F-META-001'],
  },
  {
    name: "tokenizer.ggml.pre 'llama' hardcoded: llama.cpp refuses it (paiml/aprender#277)",
    model: 'llama-tiny',
    target: 'gguf/q8_0',
    mutate: usePre('llama'),
    expected: ['F-META-004'],
    message: /tokenizer\.ggml\.pre: got 'llama'.*unknown pre-tokenizer type/,
  },
  {
    name: "tokenizer.ggml.pre 'qwen2' for a GPT-2-regex tokenizer: digits split, ids differ",
    model: 'gpt2-tiny',
    target: 'gguf/f32',
    mutate: usePre('qwen2'),
    expected: ['F-META-004'],
    message: /token ids differ on \d+ of \d+ probe strings \(tokenizer\.ggml\.pre 'qwen2'/,
  },
  {
    name: 'a merge dropped (the first, most frequent)',
    model: 'gpt2-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => void (kvOf(p, 'tokenizer.ggml.merges').value as string[]).splice(0, 1),
    expected: ['F-META-004'],
  },
  {
    name: 'a merge duplicated at the top rank (llama.cpp keeps the first rank, HF the last)',
    model: 'gpt2-tiny',
    target: 'gguf/q8_0',
    mutate: (p) => {
      const merges = kvOf(p, 'tokenizer.ggml.merges').value as string[];
      merges.unshift(merges[merges.length - 1] as string);
    },
    expected: ['F-META-004'],
    message: /tokenizer\.ggml\.merges: 1 duplicated/,
  },
  {
    name: 'duplicate tokens in the vocabulary (paiml/aprender#277, Qwen2 id_to_token assert)',
    model: 'qwen2-tiny',
    target: 'gguf/q8_0',
    mutate: withPre((p) => {
      const tokens = kvOf(p, 'tokenizer.ggml.tokens').value as string[];
      tokens[300] = tokens[299] as string;
    }),
    expected: ['F-META-004'],
    message: /duplicate token/,
  },
  {
    name: 'BOS always prepended (llama.cpp#3966)',
    model: 'gpt2-tiny',
    target: 'gguf/f32',
    mutate: (p) => void (kvOf(p, 'tokenizer.ggml.add_bos_token').value = true),
    expected: ['F-META-004'],
    message: /The file prepends BOS; the source does not/,
  },
  {
    name: 'EOS id off by one',
    model: 'llama-tiny',
    target: 'gguf/f32',
    mutate: withPre((p) => void (kvOf(p, 'tokenizer.ggml.eos_token_id').value = 382)),
    expected: ['F-META-004'],
    message: /tokenizer\.ggml\.eos_token_id: got 382, expected 383/,
  },
  {
    name: 'tokenizer dropped (aprender PR 2437)',
    model: 'gpt2-tiny',
    target: 'gguf/f32',
    mutate: (p) => {
      for (const k of [...kvsOf(p)]) if (k.key.startsWith('tokenizer.')) removeKv(p, k.key);
    },
    expected: ['F-META-004'],
    message: /tokenizer\.ggml\.tokens: missing: no tokenizer/,
  },
  {
    name: 'APR rope_type NORM for HF-layout weights (aprender PR 2084 class)',
    model: 'qwen2-tiny',
    target: 'apr/int8',
    mutate: (p) => void (aprMeta(p)['rope_type'] = 0),
    expected: ['F-META-003'],
    message: /rope_type: got 0, expected 2/,
  },
  {
    name: 'APR rms_norm_eps wrong',
    model: 'llama-tiny',
    target: 'apr/f32',
    mutate: (p) => void (aprMeta(p)['rms_norm_eps'] = 1e-6),
    expected: ['F-META-002'],
    message: /rms_norm_eps: got 0\.000001, expected 0\.00001/,
  },
  {
    name: 'APR num_kv_heads missing on a GQA model',
    model: 'qwen2-tiny',
    target: 'apr/f32',
    mutate: (p) => void delete aprMeta(p)['num_kv_heads'],
    expected: ['F-META-001'],
    message: /num_kv_heads: missing, so a reader \(num_heads\) assumes 4; expected 2/,
  },
  {
    name: 'APR vocabulary with a duplicate token',
    model: 'gpt2-tiny',
    target: 'apr/f32',
    mutate: (p) => {
      const v = aprMeta(p)['tokenizer.vocabulary'] as string[];
      v[10] = v[11] as string;
    },
    expected: ['F-META-004'],
  },
];

describe('checkMetadata catches every metadata mutant', () => {
  for (const m of META_MUTANTS) {
    it(`${m.name} → ${m.expected.join(', ')}`, () => {
      const r = check(m.model, convert(m.model, m.target, m.mutate));
      expect(codes(r)).toEqual(m.expected);
      expect(r.status).toBe('fail');
      if (m.message) expect(r.verdicts.map((v) => v.message).join('\n')).toMatch(m.message);
    });
  }

  it('a dropped merge changes the ids of the probe strings, not only the merge list', () => {
    const r = check(
      'gpt2-tiny',
      convert('gpt2-tiny', 'gguf/q8_0', (p) => void (kvOf(p, 'tokenizer.ggml.merges').value as string[]).splice(0, 1)),
    );
    const probeVerdict = r.verdicts.find(
      (v) => Array.isArray(v.evidence['mismatches']) && 'probe' in ((v.evidence['mismatches'] as object[])[0] ?? {}),
    );
    expect(probeVerdict?.code).toBe('F-META-004');
  });

  it('compares epsilons at f32 precision: the f64 value of an f32-stored eps is not a difference', () => {
    const r = check(
      'llama-tiny',
      convert(
        'llama-tiny',
        'gguf/f32',
        withPre((p) => void (kvOf(p, 'llama.attention.layer_norm_rms_epsilon').value = Math.fround(1e-5))),
      ),
    );
    expect(r.verdicts).toEqual([]);
  });

  it('a pre-tokenizer llama.cpp knows but the harness does not model is a warning, not a failure', () => {
    const r = check('gpt2-tiny', convert('gpt2-tiny', 'gguf/f32', usePre('deepseek-llm')));
    expect(r.status).toBe('warn'); // a warning holds (CLI and suites/ count it as passing)
    expect(r.verdicts.map((v) => [v.code, v.status])).toEqual([['F-META-004', 'warn']]);
  });
});

describe('tokenizer-from-gguf: the artifact tokenizer as llama.cpp would run it', () => {
  it('maps tokenizer.ggml.pre names to llama.cpp families; a missing pre is default; unknown names are rejected', () => {
    expect(resolveLlamaCppPre('gpt-2')).toMatchObject({ kind: 'modelled', family: 'gpt2', ignoreMerges: false, addBos: false });
    expect(resolveLlamaCppPre('llama-bpe')).toMatchObject({ kind: 'modelled', family: 'llama3', ignoreMerges: true, addBos: true });
    expect(resolveLlamaCppPre('smollm')).toMatchObject({ kind: 'modelled', family: 'starcoder' });
    expect(resolveLlamaCppPre(undefined)).toMatchObject({ kind: 'modelled', family: 'default' });
    expect(resolveLlamaCppPre('deepseek-coder')).toEqual({ kind: 'unmodelled', name: 'deepseek-coder' });
    expect(resolveLlamaCppPre('llama')).toEqual({ kind: 'unknown', name: 'llama' });
    expect(resolveLlamaCppPre('constructor')).toEqual({ kind: 'unknown', name: 'constructor' });
  });

  it('rebuilds the reference GGUF tokenizer: under gpt-2 it encodes every probe exactly as the source tokenizer', () => {
    const file = convert('gpt2-tiny', 'gguf/f32');
    const built = tokenizerFromGguf(file.metadata);
    if (!built.ok) throw new Error(built.reason);
    expect(built.pre.family).toBe('gpt2');
    const src = source('gpt2-tiny').tokenizer;
    for (const p of ['What is 2+2? Answer:', ...EDGE_PROBES]) expect(built.encoder.encode(p)).toEqual(src.encode(p));
  });

  it("llama.cpp's default pre-tokenizer isolates digits from the space before them (` 2` → ` ` + `2`)", () => {
    const t = ggufTokenizer(convert('llama-tiny', 'gguf/f32').metadata);
    if (!t) throw new Error('no tokenizer');
    const d = resolveLlamaCppPre('default');
    const g = resolveLlamaCppPre('gpt-2');
    if (d.kind !== 'modelled' || g.kind !== 'modelled') throw new Error('not modelled');
    const enc = (r: typeof d) => fileTokenizerEncoder(t, regexPreTokenizer(r.regexes), { ignoreMerges: r.ignoreMerges, addBos: false });
    const viaDefault = enc(d).encode('is 2');
    const viaGpt2 = enc(g).encode('is 2');
    expect(viaGpt2).toEqual(source('llama-tiny').tokenizer.encode('is 2'));
    expect(viaDefault.length).toBe(viaGpt2.length + 1);
  });

  it('finds duplicate tokens and duplicate or malformed merges', () => {
    const d = tokenizerDefects({
      model: 'gpt2',
      pre: 'gpt-2',
      tokens: ['a', 'b', 'a'],
      tokenTypes: undefined,
      merges: ['a b', 'a b', 'ab'],
      bosId: 0,
      eosId: 0,
      addBos: false,
    });
    expect(d.duplicateTokens).toEqual([{ token: 'a', ids: [0, 2] }]);
    expect(d.duplicateMerges).toEqual([{ merge: 'a b', ranks: [0, 1] }]);
    expect(d.malformedMerges).toEqual([{ merge: 'ab', rank: 2 }]);
  });
});
