import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { CORPUS_PATH, TOKENIZER_PATH } from '../../src/zoo/specs.js';
import { HfTokenizer, SPECIAL_TOKEN, tokenizerTable, trainByteLevelBpe, type TokenizerJson } from '../../src/zoo/tokenizer.js';

const committed = JSON.parse(readFileSync(TOKENIZER_PATH, 'utf8')) as TokenizerJson;

describe('zoo tokenizer', () => {
  it('is reproduced exactly by re-training on the committed corpus', () => {
    const vocabSize = Object.keys(committed.model.vocab).length;
    expect(trainByteLevelBpe(readFileSync(CORPUS_PATH, 'utf8'), vocabSize)).toEqual(committed);
  });

  it('round-trips the prompts and arbitrary UTF-8 through Hugging Face tokenizers', () => {
    const tok = new HfTokenizer(committed);
    for (const text of [...DEFAULT_PROMPTS, 'naïve café — 😀 ok', '  two  spaces\nand\ttabs']) {
      const ids = tok.encode(text);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('uses merges: prompts take fewer tokens than bytes', () => {
    const tok = new HfTokenizer(committed);
    for (const p of DEFAULT_PROMPTS) expect(tok.encode(p).length).toBeLessThan(new TextEncoder().encode(p).length);
  });

  it('keeps the special token atomic and gives it a control token type', () => {
    const tok = new HfTokenizer(committed);
    const id = committed.added_tokens[0]?.id as number;
    expect(tok.encode(`hi${SPECIAL_TOKEN}`).at(-1)).toBe(id);
    const table = tokenizerTable(committed, id + 1, id, id);
    expect(table.tokens[id]).toBe(SPECIAL_TOKEN);
    expect(table.tokenTypes[id]).toBe(3);
    expect(new Set(table.tokens).size).toBe(table.tokens.length);
  });
});
