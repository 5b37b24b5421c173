/**
 * Bring your own checkpoint, every tokenizer family: a tiny zoo model with its vocabulary resized to a real
 * tokenizer (Llama-2's SentencePiece-derived BPE, Llama-3's 128k byte-level BPE, Qwen's, GPT-2's), converted by
 * the reference. llama.cpp itself (node-llama-cpp) loads each GGUF and tokenizes the probe strings exactly as
 * Hugging Face's tokenizer does; the metadata check passes the GGUF and the APR; the tokenizer keys are what
 * convert_hf_to_gguf writes for that tokenizer.json.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMetadata, EDGE_PROBES } from '../../src/checks/metadata.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readModelFile } from '../../src/formats/read-model.js';
import type { MetaValue, ModelFile } from '../../src/formats/types.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';
import type { HfConfig } from '../../src/zoo/types.js';
import { REAL_VOCABS, writeRealVocabDir, type RealVocab } from './real-vocab.js';

const FAMILIES = (process.env.TMGT_REAL_VOCABS?.split(',') ?? Object.keys(REAL_VOCABS)) as RealVocab[];
const root = mkdtempSync(join(tmpdir(), 'tmgt-real-vocab-'));

interface Run {
  dir: string;
  config: HfConfig;
  hf: HfTokenizer;
  gguf: ModelFile;
  apr?: ModelFile;
  /** llama.cpp's ids for EDGE_PROBES, or why it could not load the file. */
  llamaCpp: number[][] | string;
  timingsMs: Record<string, number>;
}
const runs = new Map<RealVocab, Run>();
let llama: Llama | undefined;

function read(path: string): ModelFile {
  const src = new FileByteSource(path);
  try {
    return readModelFile(src);
  } finally {
    src.close();
  }
}

beforeAll(async () => {
  const log: string[] = [];
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (_l, m) => log.push(m.trim()) });
  for (const which of FAMILIES) {
    const timingsMs: Record<string, number> = {};
    let t = Date.now();
    const lap = (name: string): void => {
      timingsMs[name] = Date.now() - t;
      t = Date.now();
    };
    const dir = join(root, which);
    const ckpt = await writeRealVocabDir(dir, which);
    lap('write');
    const file = join(dir, 'out.f32.gguf');
    convertCheckpoint(dir, parseTarget('gguf/f32'), file);
    lap('convert');
    let llamaCpp: Run['llamaCpp'];
    log.length = 0;
    try {
      const model = await llama.loadModel({ modelPath: file });
      llamaCpp = EDGE_PROBES.map((p) => Array.from(model.tokenize(p), Number));
      await model.dispose();
    } catch (e) {
      llamaCpp = [(e as Error).message, ...log].join(' | ');
    }
    lap('llama.cpp');
    const run: Run = { dir, config: ckpt.config, hf: HfTokenizer.fromDir(dir), gguf: read(file), llamaCpp, timingsMs };
    // APR for Llama-2 (the SentencePiece family, the one APR's source-shaped check treats differently); the
    // 128k Llama-3 APR passes too (`tmgt check … --targets apr/f32`), but costs 20 s here.
    if (which === 'llama2') {
      const apr = join(dir, 'out.f32.apr');
      convertCheckpoint(dir, parseTarget('apr/f32'), apr);
      run.apr = read(apr);
      lap('apr');
    }
    runs.set(which, run);
  }
}, 240_000);

afterAll(async () => {
  await llama?.dispose();
});

const meta = (f: ModelFile, key: string): MetaValue | undefined => f.metadata.get(key);
function get(which: RealVocab): Run {
  const r = runs.get(which);
  if (r === undefined) throw new Error(`${which} did not run`);
  return r;
}

describe.each(FAMILIES)('%s vocabulary on a tiny model', (which) => {
  it(`llama.cpp tokenizes the ${EDGE_PROBES.length} probe strings exactly as Hugging Face does`, () => {
    const r = get(which);
    if (typeof r.llamaCpp === 'string') throw new Error(`llama.cpp refused the GGUF: ${r.llamaCpp}`);
    expect(EDGE_PROBES.length).toBe(15);
    expect(r.llamaCpp).toEqual(EDGE_PROBES.map((p) => r.hf.encode(p)));
  });

  it('the metadata check passes the reference GGUF (vocabulary, types, merges or scores, ids of every probe)', () => {
    const r = get(which);
    const c = checkMetadata(r.gguf, { config: r.config, tokenizer: r.hf });
    expect(c.verdicts).toEqual([]);
    expect(c.metrics?.probesChecked).toBeGreaterThanOrEqual(15);
  });

  it.runIf(which === 'llama2')('the metadata check passes the reference APR', () => {
    const r = get(which);
    if (r.apr === undefined) throw new Error('no APR');
    const c = checkMetadata(r.apr, { config: r.config, tokenizer: r.hf });
    expect(c.verdicts).toEqual([]);
    expect(c.metrics?.probesChecked).toBeGreaterThanOrEqual(15);
  });
});

describe('the tokenizer keys are what convert_hf_to_gguf writes for each tokenizer.json', () => {
  it.runIf(FAMILIES.includes('llama2'))(
    'Llama-2: model llama, pre default, scores, byte tokens typed 6, U+FEFF kept, no merges, add_bos',
    () => {
      const g = get('llama2').gguf;
      expect(meta(g, 'tokenizer.ggml.model')).toBe('llama');
      expect(meta(g, 'tokenizer.ggml.pre')).toBe('default');
      const tokens = meta(g, 'tokenizer.ggml.tokens') as string[];
      const types = meta(g, 'tokenizer.ggml.token_type') as number[];
      const scores = meta(g, 'tokenizer.ggml.scores') as number[];
      expect(tokens.length).toBe(32000);
      expect(scores.length).toBe(32000);
      expect(tokens[31759]).toBe('\ufeff');
      expect(tokens.slice(3, 259)).toEqual(Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
      expect(new Set(types.slice(3, 259))).toEqual(new Set([6]));
      expect(types.slice(0, 3)).toEqual([2, 3, 3]);
      expect(meta(g, 'tokenizer.ggml.merges')).toBeUndefined();
      // The merge priority: "▁t" (the first merge) outranks "er"; "▁▁" (a late merge) is below both.
      const score = (t: string): number => scores[tokens.indexOf(t)] as number;
      expect(score('▁t')).toBeGreaterThan(score('er'));
      expect(score('er')).toBeGreaterThan(score('▁▁'));
      expect(meta(g, 'tokenizer.ggml.bos_token_id')).toBe(1);
      expect(meta(g, 'tokenizer.ggml.eos_token_id')).toBe(2);
      expect(meta(g, 'tokenizer.ggml.unknown_token_id')).toBe(0);
      expect(meta(g, 'tokenizer.ggml.add_bos_token')).toBe(true);
      expect(meta(g, 'tokenizer.ggml.add_eos_token')).toBe(false);
    },
  );

  it.runIf(FAMILIES.includes('llama3'))(
    'Llama-3: model gpt2, pre by the converter’s hash table, 280,147 merges as written, no duplicates',
    () => {
      const g = get('llama3').gguf;
      expect(meta(g, 'tokenizer.ggml.model')).toBe('gpt2');
      // This tokenizer.json has no BOS template: its check-text hash is the one convert_hf_to_gguf lists for
      // Smaug-Llama-3 ('smaug-bpe': Llama-3's regex, no add_bos). Meta's own (with the BOS template) hashes to 'llama-bpe'.
      expect(meta(g, 'tokenizer.ggml.pre')).toBe('smaug-bpe');
      const merges = meta(g, 'tokenizer.ggml.merges') as string[];
      expect(merges.length).toBe(280147);
      expect(merges[0]).toBe('Ġ Ġ');
      expect(new Set(merges).size).toBe(merges.length);
      const tokens = meta(g, 'tokenizer.ggml.tokens') as string[];
      expect(tokens.length).toBe(128256);
      expect(tokens[128000]).toBe('<|begin_of_text|>');
      expect((meta(g, 'tokenizer.ggml.token_type') as number[])[128000]).toBe(3);
      expect(meta(g, 'tokenizer.ggml.bos_token_id')).toBe(128000);
      expect(meta(g, 'tokenizer.ggml.eos_token_id')).toBe(128001);
      expect(typeof meta(g, 'tokenizer.chat_template')).toBe('string');
    },
  );

  it.runIf(FAMILIES.includes('qwen2'))('Qwen: pre qwen2, merges from [a, b] pairs, [PAD] fillers up to vocab_size', () => {
    const g = get('qwen2').gguf;
    expect(meta(g, 'tokenizer.ggml.pre')).toBe('qwen2');
    const merges = meta(g, 'tokenizer.ggml.merges') as string[];
    expect(merges[0]).toBe('Ġ Ġ');
    expect(merges.length).toBe(151387);
    const tokens = meta(g, 'tokenizer.ggml.tokens') as string[];
    expect(tokens.length).toBe(151936);
    expect(tokens[151935]).toBe('[PAD151935]');
    expect((meta(g, 'tokenizer.ggml.token_type') as number[])[151935]).toBe(5);
    expect(meta(g, 'tokenizer.ggml.eos_token_id')).toBe(151645);
    expect(meta(g, 'tokenizer.ggml.padding_token_id')).toBe(151643);
  });

  it.runIf(FAMILIES.includes('gpt2'))('GPT-2: pre gpt-2 by hash, 50,000 merges, <|endoftext|> control', () => {
    const g = get('gpt2').gguf;
    expect(meta(g, 'tokenizer.ggml.pre')).toBe('gpt-2');
    expect((meta(g, 'tokenizer.ggml.merges') as string[]).length).toBe(50000);
    expect((meta(g, 'tokenizer.ggml.token_type') as number[])[50256]).toBe(3);
  });

  it('finishes each family in bounded time (the expensive part runs once per file)', () => {
    for (const [which, r] of runs) {
      const total = Object.values(r.timingsMs).reduce((a, b) => a + b, 0);
      console.log(`${which}: ${JSON.stringify(r.timingsMs)} total ${total} ms`);
      expect(total).toBeLessThan(60_000);
    }
  });
});
