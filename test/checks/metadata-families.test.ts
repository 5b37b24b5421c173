/**
 * Family-specific tokenizer bugs, each injected into the reference's GGUF of a real vocabulary and caught by the
 * metadata check with F-META-004: a SentencePiece-derived vocabulary (Llama-2) without scores or with
 * LlamaHfVocab's placeholder scores, byte tokens typed normal, the U+FEFF token lost, the wrong tokenizer model;
 * a byte-level BPE (GPT-2) with the wrong pre-tokenizer or with merges split into characters (the `"▁  "` bug).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkMetadata } from '../../src/checks/metadata.js';
import type { GgufPlan } from '../../src/converters/plan.js';
import { planGguf } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { writeArtifact } from '../../src/converters/write-artifact.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import type { GgufKv } from '../../src/formats/gguf/writer.js';
import { readModelFile } from '../../src/formats/read-model.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';
import type { HfConfig } from '../../src/zoo/types.js';
import { writeRealVocabDir, type RealVocab } from '../zoo/real-vocab.js';

const root = mkdtempSync(join(tmpdir(), 'tmgt-meta-families-'));
const sources = new Map<RealVocab, { plan: GgufPlan; config: HfConfig; tokenizer: HfTokenizer }>();

beforeAll(async () => {
  for (const which of ['llama2', 'gpt2'] as const) {
    const dir = join(root, which);
    await writeRealVocabDir(dir, which);
    const ckpt = loadCheckpoint(dir);
    sources.set(which, { plan: planGguf(ckpt, dir, parseTarget('gguf/f32')), config: ckpt.config, tokenizer: HfTokenizer.fromDir(dir) });
  }
}, 60_000);

/** The reference plan of a family with its tokenizer keys edited, written, read back and checked. */
function checkMutated(which: RealVocab, name: string, edit: (kvs: GgufKv[]) => GgufKv[]) {
  const s = sources.get(which);
  if (s === undefined) throw new Error(`${which} not built`);
  const plan: GgufPlan = { ...s.plan, kvs: edit(s.plan.kvs.map((k) => ({ ...k }))) };
  const file = join(root, `${which}-${name}.gguf`);
  writeArtifact(plan, file);
  const src = new FileByteSource(file);
  try {
    return checkMetadata(readModelFile(src), { config: s.config, tokenizer: s.tokenizer });
  } finally {
    src.close();
  }
}

const setKv = (key: string, value: GgufKv['value']) => (kvs: GgufKv[]) => kvs.map((k) => (k.key === key ? { ...k, value } : k));
const arrayOf = <T>(kvs: GgufKv[], key: string): T[] => Array.from(kvs.find((k) => k.key === key)?.value as ArrayLike<T>);

describe('tokenizer bugs of each family are caught with F-META-004', () => {
  it('the unmutated GGUFs pass (the baseline the mutants are measured against)', () => {
    for (const which of ['llama2', 'gpt2'] as const) expect(checkMutated(which, 'none', (k) => k).verdicts).toEqual([]);
  });

  const cases: { which: RealVocab; name: string; edit: (kvs: GgufKv[]) => GgufKv[]; message: RegExp }[] = [
    {
      which: 'llama2',
      name: 'scores-dropped',
      edit: (kvs) => kvs.filter((k) => k.key !== 'tokenizer.ggml.scores'),
      message: /tokenizer\.ggml\.scores: missing/,
    },
    {
      // What LlamaHfVocab writes: llama.cpp then merges left to right (6 of 14 probes differ under node-llama-cpp).
      which: 'llama2',
      name: 'scores-flat',
      edit: (kvs) =>
        setKv(
          'tokenizer.ggml.scores',
          arrayOf<number>(kvs, 'tokenizer.ggml.scores').map(() => -1000),
        )(kvs),
      message: /token ids differ on \d+ of \d+ probe strings/,
    },
    {
      which: 'llama2',
      name: 'byte-tokens-normal',
      edit: (kvs) =>
        setKv(
          'tokenizer.ggml.token_type',
          arrayOf<number>(kvs, 'tokenizer.ggml.token_type').map((t) => (t === 6 ? 1 : t)),
        )(kvs),
      message: /256 id\(s\) typed unlike the source, e\.g\. id 3 "<0x00>": got 1 \(normal\), expected 6 \(byte\)/,
    },
    {
      which: 'llama2',
      name: 'bom-lost',
      edit: (kvs) =>
        setKv(
          'tokenizer.ggml.tokens',
          arrayOf<string>(kvs, 'tokenizer.ggml.tokens').map((t) => (t === '\ufeff' ? '' : t)),
        )(kvs),
      message: /id 31759: got "", expected "\ufeff"/,
    },
    {
      which: 'llama2',
      name: 'model-gpt2',
      edit: setKv('tokenizer.ggml.model', 'gpt2'),
      message: /tokenizer\.ggml\.model is "gpt2", expected "llama"/,
    },
    {
      which: 'gpt2',
      name: 'pre-default',
      edit: setKv('tokenizer.ggml.pre', 'default'),
      message: /token ids differ on \d+ of \d+ probe strings \(tokenizer\.ggml\.pre 'default'/,
    },
    {
      // A merge string destructured as characters ("Ġ t" → "Ġ", " "): the issue's `"▁  "` / `"Ġ  "` merges.
      which: 'gpt2',
      name: 'merges-split-into-characters',
      edit: (kvs) =>
        setKv(
          'tokenizer.ggml.merges',
          arrayOf<string>(kvs, 'tokenizer.ggml.merges').map((m) => {
            const [a, b] = m;
            return `${a ?? ''} ${b ?? ''}`;
          }),
        )(kvs),
      message: /tokenizer\.ggml\.merges: .*duplicated/,
    },
  ];
  for (const c of cases) {
    it(`${c.which}: ${c.name}`, () => {
      const r = checkMutated(c.which, c.name, c.edit);
      expect(r.status).toBe('fail');
      expect(new Set(r.verdicts.map((v) => v.code))).toEqual(new Set(['F-META-004']));
      expect(r.verdicts.map((v) => v.message).join('\n')).toMatch(c.message);
    });
  }
});
