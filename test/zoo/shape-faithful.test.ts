import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readSafetensors } from '../../src/formats/safetensors/reader.js';
import { seededCheckpoint } from '../../src/zoo/build.js';
import { hfTensorShapes } from '../../src/zoo/checkpoint.js';
import { parameterCount, writeSeededSafetensorsStreaming, writeShapeTokenizer } from '../../src/zoo/shape-faithful.js';
import { findModelSpec, type ModelSpec } from '../../src/zoo/specs.js';
import { HfTokenizer } from '../../src/zoo/tokenizer.js';

function seeded(name: string): Extract<ModelSpec, { kind: 'seeded' }> {
  const spec = findModelSpec(name);
  if (spec.kind !== 'seeded') throw new Error(`${name} is not seeded`);
  return spec;
}

const numel = (s: number[] | undefined) => (s ?? []).reduce((a, b) => a * b, 1);

// Published parameter counts and the element counts of the seed bug report (aprender #231/#234).
describe('shape-faithful zoo models (specs only; `tmgt models build` makes the weights on demand)', () => {
  it('smollm-135m-shape has SmolLM-135M exact shapes', () => {
    const c = seeded('smollm-135m-shape').config;
    expect(parameterCount(c)).toBe(134_515_008);
    expect(numel(hfTensorShapes(c).get('model.embed_tokens.weight'))).toBe(28_311_552);
    expect(hfTensorShapes(c).get('model.layers.0.self_attn.k_proj.weight')).toEqual([192, 576]);
    expect(hfTensorShapes(c).has('lm_head.weight')).toBe(false);
  });

  it('qwen2-0.5b-shape has Qwen2-0.5B exact shapes, q/k/v biases', () => {
    const c = seeded('qwen2-0.5b-shape').config;
    expect(parameterCount(c)).toBe(494_032_768);
    expect(numel(hfTensorShapes(c).get('model.embed_tokens.weight'))).toBe(136_134_656);
    expect(hfTensorShapes(c).get('model.layers.0.self_attn.k_proj.bias')).toEqual([128]);
  });

  it('gpt2-124m-shape has GPT-2 exact shapes, Conv1D [in, out]', () => {
    const c = seeded('gpt2-124m-shape').config;
    expect(parameterCount(c)).toBe(124_439_808);
    expect(hfTensorShapes(c).get('h.0.attn.c_attn.weight')).toEqual([768, 2304]);
  });

  it('real vocabularies tokenize the prompts exactly as the real models do', () => {
    const cases = [
      ['qwen2-0.5b-shape', [785, 6722, 315, 9625, 374]],
      ['gpt2-124m-shape', [464, 3139, 286, 4881, 318]],
    ] as const;
    for (const [name, ids] of cases) {
      const spec = seeded(name);
      const dir = mkdtempSync(join(tmpdir(), 'tmgt-tok-'));
      if (!spec.tokenizer) throw new Error('no tokenizer source');
      writeShapeTokenizer(dir, spec.tokenizer, spec.config.bos_token_id, spec.config.eos_token_id);
      expect(HfTokenizer.fromDir(dir).encode('The capital of France is'), name).toEqual(ids);
    }
    const smol = seeded('smollm-135m-shape');
    const dir = mkdtempSync(join(tmpdir(), 'tmgt-tok-'));
    writeShapeTokenizer(dir, smol.tokenizer ?? { source: 'generated', vocabSize: 0 }, 0, 0);
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    expect(Object.keys(json.model.vocab)).toHaveLength(49_152);
    const tok = HfTokenizer.fromDir(dir);
    expect(tok.decode(tok.encode('def fibonacci(n):'))).toBe('def fibonacci(n):');
  });

  it('the streaming writer produces the same bytes as the in-memory seeded builder', () => {
    // A small qwen2 config (biases, untied head) stands in for the big ones.
    const big = seeded('qwen2-0.5b-shape');
    const spec = {
      config: {
        ...big.config,
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        tie_word_embeddings: false,
      },
      init: big.init,
    };
    const dir = mkdtempSync(join(tmpdir(), 'tmgt-stream-'));
    const path = join(dir, 'model.safetensors');
    writeSeededSafetensorsStreaming(path, spec.config, spec.init);
    const src = new FileByteSource(path);
    try {
      const file = readSafetensors(src);
      expect(file.issues).toEqual([]);
      const ckpt = seededCheckpoint(spec.config, spec.init);
      expect(file.tensors.map((t) => t.name).sort()).toEqual([...ckpt.tensors.keys()].sort());
      for (const t of file.tensors) {
        const got = new Float32Array(src.read(t.offset, t.byteLength).slice().buffer);
        expect(got, t.name).toEqual(ckpt.tensors.get(t.name)?.data);
      }
    } finally {
      src.close();
    }
  });
});
