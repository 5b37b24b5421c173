/**
 * Renders docs/verdicts.md from the verdict catalogue (src/contracts/verdicts.ts) and the mutant catalogue
 * (src/converters/mutants.ts): per code its meaning, level, the bug classes it catches with their sources,
 * the mutants that prove it, and how to reproduce it.
 *
 *   npx tsx scripts/render-verdicts.ts           write docs/verdicts.md
 *   npx tsx scripts/render-verdicts.ts --check   exit 1 when docs/verdicts.md is not current
 *
 * test/report/verdicts-doc.test.ts fails when the committed page differs from what this renders.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CODES, type VerdictCode } from '../src/contracts/verdicts.js';
import { MUTANTS, mutantArchs } from '../src/converters/mutants.js';

const ROOT = join(import.meta.dirname, '..');
export const VERDICTS_DOC = join(ROOT, 'docs', 'verdicts.md');

/**
 * Bug classes of the reference bug catalogue (reference/bug-catalogue.md §3): what goes wrong, the real
 * reports it comes from, and the codes that fire first on it.
 */
const BUG_CLASSES = {
  A: {
    name: 'wrong element width (quantized bytes declared f32, bf16 as f32)',
    codes: ['F-LAYOUT-CONTRACT-001', 'F-LAYOUT-CONTRACT-004'],
    sources: [
      '[aprender#231](https://github.com/paiml/aprender/issues/231)',
      '[#234](https://github.com/paiml/aprender/issues/234)',
      '[#237](https://github.com/paiml/aprender/issues/237)',
      '[#239](https://github.com/paiml/aprender/issues/239)',
      '[#369](https://github.com/paiml/aprender/issues/369)',
    ],
  },
  B: {
    name: 'zeros, unwritten payload, offset shift',
    codes: ['F-DATA-QUALITY-001', 'F-DATA-QUALITY-004', 'F-DATA-QUALITY-005'],
    sources: [
      '[aprender#232](https://github.com/paiml/aprender/issues/232)',
      '[#241](https://github.com/paiml/aprender/issues/241)',
      'aprender PMAT-234',
    ],
  },
  C: {
    name: 'wrong quantize/skip policy (lm_head, embeddings, 1-D norms)',
    codes: ['F-LAYOUT-CONTRACT-007', 'F-LAYOUT-CONTRACT-003', 'F-FIDELITY-001'],
    sources: [
      '[aprender#234](https://github.com/paiml/aprender/issues/234)',
      '[stable-diffusion.cpp PR 1861](https://github.com/leejet/stable-diffusion.cpp/pull/1861)',
      '[mlx-examples#967](https://github.com/ml-explore/mlx-examples/issues/967)',
    ],
  },
  D: {
    name: 'name mapping',
    codes: ['F-LAYOUT-CONTRACT-006'],
    sources: [
      '[aprender#233](https://github.com/paiml/aprender/issues/233)',
      '[#255](https://github.com/paiml/aprender/issues/255)',
      '[SharpMind PR 4](https://github.com/Integral2u/SharpMind/pull/4)',
    ],
  },
  E: {
    name: 'wrong hyperparameter metadata',
    codes: ['F-META-001'],
    sources: [
      '[aprender#235](https://github.com/paiml/aprender/issues/235)',
      '[#236](https://github.com/paiml/aprender/issues/236)',
      '[#277](https://github.com/paiml/aprender/issues/277)',
      '[CTranslate2#1793](https://github.com/OpenNMT/CTranslate2/issues/1793)',
    ],
  },
  F: {
    name: 'norm epsilon',
    codes: ['F-META-002'],
    sources: [
      '[llama.cpp#2373](https://github.com/ggml-org/llama.cpp/issues/2373)',
      '[PR 2374](https://github.com/ggml-org/llama.cpp/pull/2374)',
      '[CTranslate2 PR 1357](https://github.com/OpenNMT/CTranslate2/pull/1357)',
    ],
  },
  G: {
    name: 'missing or wrong Q/K RoPE permutation (GQA)',
    codes: ['F-FIDELITY-002', 'F-LOGITS-003'],
    sources: [
      '[llama.cpp PR 3364](https://github.com/ggml-org/llama.cpp/pull/3364)',
      '[PR 7481](https://github.com/ggml-org/llama.cpp/pull/7481)',
      '[TinyLlama#24](https://github.com/jzhang38/TinyLlama/issues/24)',
      '[transformers PR 31788](https://github.com/huggingface/transformers/pull/31788)',
    ],
  },
  H: {
    name: 'RoPE type NORM vs NEOX',
    codes: ['F-META-003'],
    sources: [
      '[llama.cpp PR 13260](https://github.com/ggml-org/llama.cpp/pull/13260)',
      '[ik_llama.cpp PR 2290](https://github.com/ikawrakow/ik_llama.cpp/pull/2290)',
      '[candle#3410](https://github.com/huggingface/candle/issues/3410)',
      '[aprender PR 2084](https://github.com/paiml/aprender/pull/2084)',
    ],
  },
  I: {
    name: 'Conv1D/FFN transpose missing or extra',
    codes: ['F-LAYOUT-CONTRACT-002', 'F-FIDELITY-002'],
    sources: [
      '[aprender PR 1466](https://github.com/paiml/aprender/pull/1466)',
      '[AutoGPTQ PR 139](https://github.com/AutoGPTQ/AutoGPTQ/pull/139)',
    ],
  },
  J: {
    name: 'fused QKV order or interleave',
    codes: ['F-FIDELITY-002'],
    sources: [
      '[mlxcel PR 928](https://github.com/lablup/mlxcel/pull/928)',
      '[optimum-quanto#74](https://github.com/huggingface/optimum-quanto/issues/74)',
    ],
  },
  K: {
    name: 'bias dropped (Qwen2 q/k/v)',
    codes: ['F-LAYOUT-CONTRACT-006'],
    sources: ['[ANEForge PR 253](https://github.com/sbryngelson/ANEForge/pull/253)'],
  },
  L: {
    name: 'tied embeddings / output.weight',
    codes: ['F-LAYOUT-CONTRACT-006', 'F-FIDELITY-001'],
    sources: [
      '[llama.cpp#12567](https://github.com/ggml-org/llama.cpp/issues/12567)',
      '[transformers PR 43429](https://github.com/huggingface/transformers/pull/43429)',
    ],
  },
  M: {
    name: 'tokenizer / BOS',
    codes: ['F-META-004'],
    sources: [
      '[aprender#277](https://github.com/paiml/aprender/issues/277)',
      '[llama.cpp#3966](https://github.com/ggml-org/llama.cpp/issues/3966)',
      '[PR 6920](https://github.com/ggml-org/llama.cpp/pull/6920)',
      '[ollama#17698](https://github.com/ollama/ollama/issues/17698)',
    ],
  },
  N: {
    name: 'f16 overflow → Inf → NaN',
    codes: ['F-DATA-QUALITY-002', 'F-LOGITS-001'],
    sources: [
      '[tensorflow#43719](https://github.com/tensorflow/tensorflow/issues/43719)',
      '[llama.cpp#13722](https://github.com/ggml-org/llama.cpp/issues/13722)',
    ],
  },
  O: {
    name: 'bf16/f16 rounding, subnormals, NaN',
    codes: ['F-FIDELITY-003'],
    sources: [
      '[aprender PR 2144](https://github.com/paiml/aprender/pull/2144)',
      '[llama.cpp PR 7843](https://github.com/ggml-org/llama.cpp/pull/7843)',
      '[diffgemma PR 18](https://github.com/mmastrac/diffgemma/pull/18)',
    ],
  },
  P: {
    name: 'block-scale bugs (order, lane map, nibble aliasing, scale dtype)',
    codes: ['F-FIDELITY-001'],
    sources: [
      '[transformers PR 46763](https://github.com/huggingface/transformers/pull/46763)',
      '[aprender PR 1924](https://github.com/paiml/aprender/pull/1924)',
      '[1bit-MONSTER#153](https://github.com/1bit-MONSTER/1bit-MONSTER/issues/153)',
      '[#677](https://github.com/1bit-MONSTER/1bit-MONSTER/issues/677)',
    ],
  },
  Q: {
    name: 'alignment / offsets',
    codes: ['F-FILE-002', 'F-FILE-003', 'F-DATA-QUALITY-004'],
    sources: [
      '[ollama PR 10239](https://github.com/ollama/ollama/pull/10239)',
      '[llama.cpp PR 18291](https://github.com/ggml-org/llama.cpp/pull/18291)',
      '[aprender#275](https://github.com/paiml/aprender/issues/275)',
    ],
  },
  R: {
    name: 'endianness',
    codes: ['F-DATA-QUALITY-002', 'F-FIDELITY-001'],
    sources: ['[llama.cpp#12863](https://github.com/ggml-org/llama.cpp/issues/12863)'],
  },
  S: {
    name: 'silent no-op or invented weights',
    codes: ['F-LAYOUT-CONTRACT-007', 'F-FIDELITY-001'],
    sources: [
      '[aprender#276](https://github.com/paiml/aprender/issues/276)',
      '[#3656](https://github.com/paiml/aprender/issues/3656)',
      '[PR 2437](https://github.com/paiml/aprender/pull/2437)',
    ],
  },
  T: {
    name: 'transform applied twice',
    codes: ['F-FIDELITY-002'],
    sources: ['[mlx-vlm#1521](https://github.com/Blaizzy/mlx-vlm/issues/1521)'],
  },
  U: {
    name: 'truncation / dropped layers',
    codes: ['F-LAYOUT-CONTRACT-006', 'F-FILE-002'],
    sources: [
      '[realizar#44](https://github.com/paiml/realizar/issues/44)',
      '[aprender PR 2564](https://github.com/paiml/aprender/pull/2564)',
    ],
  },
  X: {
    name: 'runtime ops and cross-runtime disagreement (the file is fine, a runtime is not)',
    codes: ['F-CROSS-RUNTIME-001', 'F-LOGITS-002', 'F-TOKENS-002'],
    sources: ['[aprender#278](https://github.com/paiml/aprender/issues/278)'],
  },
} as const satisfies Record<string, { name: string; codes: readonly VerdictCode[]; sources: readonly string[] }>;

/** The tiny model each architecture reproduces on. */
const MODEL_OF_ARCH = { llama: 'llama-tiny', qwen2: 'qwen2-tiny', gpt2: 'gpt2-tiny' } as const;

/** A markdown table cell: a pipe would split it. */
const cell = (s: string): string => s.replace(/\|/g, '\\|');

const anchor = (code: string): string => code.toLowerCase();

/** The whole page. Deterministic: the two catalogues decide every byte. */
export function renderVerdictsDoc(): string {
  const codes = Object.keys(CODES) as VerdictCode[]; // the catalogue's own keys
  const out: string[] = [
    '<!-- Generated by scripts/render-verdicts.ts from src/contracts/verdicts.ts and src/converters/mutants.ts. Do not edit by hand:',
    '     run `npx tsx scripts/render-verdicts.ts`; test/report/verdicts-doc.test.ts fails when this page is not current. -->',
    '',
    '# Verdict codes',
    '',
    'Every finding of tiny-model-ground-truth carries one of these codes. Codes are stable: never renumbered, never reused.',
    'A verdict is data (`{code, status, tensor?, message, evidence}`): the evidence holds expected vs got, the measured',
    'values and the bound. The harness proves each claim below with a **mutant**: the reference converter plus one real',
    'converter bug, which `tmgt mutants` must catch with the expected code.',
    '',
    '| code | level | meaning | mutants |',
    '|---|---|---|---|',
  ];
  for (const code of codes) {
    const n = MUTANTS.filter((m) => (m.expected as readonly string[]).includes(code)).length;
    out.push(`| [${code}](#${anchor(code)}) | ${CODES[code].level} | ${CODES[code].title} | ${n || '—'} |`);
  }
  out.push('');
  let level = '';
  for (const code of codes) {
    const entry = CODES[code];
    if (entry.level !== level) {
      level = entry.level;
      out.push(`## ${level}`, '');
    }
    out.push(`### ${code}`, '', `**${entry.title}** (${entry.level})`, '');
    const classes = Object.entries(BUG_CLASSES).filter(([, c]) => (c.codes as readonly string[]).includes(code));
    if (classes.length > 0) {
      out.push('Bug classes it catches:', '');
      for (const [letter, c] of classes) out.push(`- **${letter}: ${c.name}** — ${c.sources.join(', ')}`);
      out.push('');
    }
    const mutants = MUTANTS.filter((m) => (m.expected as readonly string[]).includes(code));
    if (mutants.length > 0) {
      out.push(
        'Mutants that prove it (each must raise every expected code):',
        '',
        '| mutant | bug | grounding | target | expected |',
        '|---|---|---|---|---|',
      );
      for (const m of mutants) {
        out.push(`| \`${m.id}\` | ${cell(m.description)} | ${cell(m.grounding)} | ${m.target} | ${m.expected.join(', ')} |`);
      }
      out.push('', 'Reproduce:', '', '```sh');
      for (const m of mutants) {
        const model = MODEL_OF_ARCH[mutantArchs(m)[0] ?? 'llama'];
        out.push(`npx tmgt check --models ${model} --targets ${m.target} --converter ${m.id}`);
      }
      out.push(`npx tmgt mutants --mutants ${mutants.map((m) => m.id).join(',')}`, '```', '');
    } else {
      out.push('No mutant converter produces it yet.', '');
    }
  }
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const page = renderVerdictsDoc();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(VERDICTS_DOC, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== page) {
      console.error(`${relative(ROOT, VERDICTS_DOC)} is not current: run npx tsx scripts/render-verdicts.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(VERDICTS_DOC, page);
    console.log(`wrote ${relative(ROOT, VERDICTS_DOC)}`);
  }
}
