import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedGgufTensors, expectedHfTensors } from '../../src/checks/manifest.js';
import { findMutant } from '../../src/converters/mutants.js';
import { convertCheckpoint, planGguf } from '../../src/converters/reference.js';
import { convertType } from '../../src/converters/quant-rules.js';
import { parseTarget } from '../../src/converters/targets.js';
import type { AprFile } from '../../src/formats/apr/reader.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readTensorF32 } from '../../src/formats/gguf/reader.js';
import { readModelFile } from '../../src/formats/read-model.js';
import { dequantize } from '../../src/formats/codecs/index.js';
import { readTensorBytes } from '../../src/formats/gguf/reader.js';
import type { MetaValue, ModelFile } from '../../src/formats/types.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import { commonDims, isGpt2, type Checkpoint } from '../../src/zoo/types.js';

const MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;
const TARGETS = ['gguf/f32', 'gguf/q8_0', 'apr/f32', 'apr/int8', 'safetensors/f16'] as const;
const GGUF_TARGETS = ['gguf/f32', 'gguf/q8_0'] as const;
const workDir = mkdtempSync(join(tmpdir(), 'tmgt-reference-'));

interface Converted {
  sourceDir: string;
  ckpt: Checkpoint;
  /** The reference converter's file per target, read back. */
  files: Record<(typeof TARGETS)[number], { file: ModelFile; src: FileByteSource }>;
}

const converted = new Map<string, Converted>();

beforeAll(async () => {
  for (const model of MODELS) {
    const sourceDir = await buildModel(findModelSpec(model));
    const files = {} as Converted['files'];
    for (const t of TARGETS) {
      const out = join(workDir, `${model}.${t.replace('/', '_')}`);
      convertCheckpoint(sourceDir, parseTarget(t), out);
      const src = new FileByteSource(out);
      files[t] = { file: readModelFile(src), src };
    }
    converted.set(model, { sourceDir, ckpt: loadCheckpoint(sourceDir), files });
  }
}, 120_000);

afterAll(() => {
  for (const c of converted.values()) for (const f of Object.values(c.files)) f.src.close();
});

function get(model: string): Converted {
  const c = converted.get(model);
  if (!c) throw new Error(`${model} was not converted`);
  return c;
}

/** The GGUF tensors llama.cpp writes for a checkpoint, name → torch-order shape, from the config's dims alone. */
function expectedShapes(ckpt: Checkpoint): Map<string, number[]> {
  const d = commonDims(ckpt.config);
  const q = d.heads * d.headDim;
  const kv = d.kvHeads * d.headDim;
  const shapes = new Map<string, number[]>([
    ['token_embd.weight', [d.vocab, d.hidden]],
    ['output_norm.weight', [d.hidden]],
  ]);
  if (isGpt2(ckpt.config)) {
    shapes.set('position_embd.weight', [d.maxPositions, d.hidden]);
    shapes.set('output_norm.bias', [d.hidden]);
  }
  for (let i = 0; i < d.layers; i++) {
    const b = `blk.${i}.`;
    shapes.set(`${b}attn_norm.weight`, [d.hidden]);
    shapes.set(`${b}ffn_norm.weight`, [d.hidden]);
    shapes.set(`${b}attn_output.weight`, [d.hidden, q]);
    shapes.set(`${b}ffn_up.weight`, [d.ffn, d.hidden]);
    shapes.set(`${b}ffn_down.weight`, [d.hidden, d.ffn]);
    if (isGpt2(ckpt.config)) {
      shapes.set(`${b}attn_norm.bias`, [d.hidden]);
      shapes.set(`${b}ffn_norm.bias`, [d.hidden]);
      shapes.set(`${b}attn_qkv.weight`, [3 * d.hidden, d.hidden]);
      shapes.set(`${b}attn_qkv.bias`, [3 * d.hidden]);
      shapes.set(`${b}attn_output.bias`, [d.hidden]);
      shapes.set(`${b}ffn_up.bias`, [d.ffn]);
      shapes.set(`${b}ffn_down.bias`, [d.hidden]);
    } else {
      shapes.set(`${b}attn_q.weight`, [q, d.hidden]);
      shapes.set(`${b}attn_k.weight`, [kv, d.hidden]);
      shapes.set(`${b}attn_v.weight`, [kv, d.hidden]);
      shapes.set(`${b}ffn_gate.weight`, [d.ffn, d.hidden]);
      if (ckpt.config.model_type === 'qwen2') {
        shapes.set(`${b}attn_q.bias`, [q]);
        shapes.set(`${b}attn_k.bias`, [kv]);
        shapes.set(`${b}attn_v.bias`, [kv]);
      }
    }
  }
  if (!d.tied) shapes.set('output.weight', [d.vocab, d.hidden]);
  return shapes;
}

/** llama.cpp's F32-kept tensors: 1-D, `*_norm.weight`, non-`.weight` names, `position_embd`. */
function keptF32(name: string, shape: number[]): boolean {
  return shape.length === 1 || name.endsWith('_norm.weight') || !name.endsWith('.weight') || name === 'position_embd.weight';
}

function tensorValues(c: Converted, target: (typeof TARGETS)[number], name: string): Float32Array {
  const { file, src } = c.files[target];
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`${name} missing`);
  return file.format === 'gguf'
    ? readTensorF32(src, t)
    : dequantize(
        t.dtype,
        readTensorBytes(src, t),
        t.shape.reduce((a, b) => a * b, 1),
      );
}

function source(c: Converted, hfName: string): Float32Array {
  const t = c.ckpt.tensors.get(hfName);
  if (!t) throw new Error(`source ${hfName} missing`);
  return t.data;
}

describe('reference converter: names, shapes, dtypes per arch', () => {
  for (const model of MODELS) {
    for (const target of GGUF_TARGETS) {
      it(`${model} × ${target}: every tensor llama.cpp writes, with its torch-order shape and dtype`, () => {
        const c = get(model);
        const { file } = c.files[target];
        expect(file.format).toBe('gguf');
        expect(file.issues).toEqual([]);
        const want = expectedShapes(c.ckpt);
        expect(new Map(file.tensors.map((t) => [t.name, t.shape]))).toEqual(want);
        // llama-quantize Q8_0: every quantizable tensor Q8_0 (the output rule keeps Q8_0 at Q8_0; every zoo row divides into 32).
        const quantized = parseTarget(target).weightDType;
        for (const t of file.tensors) expect(t.dtype, t.name).toBe(keptF32(t.name, t.shape) ? 'F32' : quantized);
      });
    }
  }

  it('convert_hf_to_gguf --outtype: what llama.cpp keeps in F32, whatever the out type', () => {
    const cases = [
      ['token_embd.weight', [384, 96], 'F16'],
      ['position_embd.weight', [128, 96], 'F32'],
      ['blk.0.attn_qkv.bias', [288], 'F32'],
      ['blk.0.attn_norm.weight', [96], 'F32'],
      ['blk.0.ffn_down.weight', [96, 224], 'F16'],
      ['output.weight', [384, 96], 'F16'],
    ] as const;
    for (const [name, shape, dtype] of cases) expect(convertType(name, [...shape], 'F16'), `${name} [${shape.join(', ')}]`).toBe(dtype);
    for (const [name, shape] of cases) expect(convertType(name, [...shape], 'F32')).toBe('F32');
  });

  it('the manifest expects exactly what the reference writes (names, shapes; tied output.weight optional)', () => {
    for (const model of MODELS) {
      const c = get(model);
      const expected = expectedGgufTensors(c.ckpt);
      const required = expected.filter((e) => !e.optional);
      const file = c.files['gguf/f32'].file;
      expect(new Map(required.map((e) => [e.name, e.shape])), model).toEqual(new Map(file.tensors.map((t) => [t.name, t.shape])));
      const optional = expected.filter((e) => e.optional).map((e) => e.name);
      expect(optional, model).toEqual(commonDims(c.ckpt.config).tied ? ['output.weight'] : []);
      // Source values are held in the file's layout: at f32 they equal what the file stores.
      for (const e of required) expect(tensorValues(c, 'gguf/f32', e.name), `${model} ${e.name}`).toEqual(e.source);
    }
  });

  it('a checkpoint tensor llama.cpp cannot map is a converter error, a GPT-2 mask buffer is dropped', () => {
    const c = get('gpt2-tiny');
    const tensors = new Map(c.ckpt.tensors);
    tensors.set('h.0.attn.bias', { shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) });
    tensors.set('h.0.attn.masked_bias', { shape: [1], data: new Float32Array([-1e4]) });
    const plan = planGguf({ config: c.ckpt.config, tensors }, c.sourceDir, parseTarget('gguf/f32'));
    expect(plan.tensors.map((t) => t.name)).toEqual(planGguf(c.ckpt, c.sourceDir, parseTarget('gguf/f32')).tensors.map((t) => t.name));
    tensors.set('h.0.mystery.weight', { shape: [2, 2], data: new Float32Array(4) });
    expect(() => planGguf({ config: c.ckpt.config, tensors }, c.sourceDir, parseTarget('gguf/f32'))).toThrow(
      /cannot map tensor 'h\.0\.mystery\.weight'/,
    );
  });

  it('GPT-2 names are accepted with the `transformer.` prefix', () => {
    const c = get('gpt2-tiny');
    const prefixed = new Map([...c.ckpt.tensors].map(([n, t]) => [`transformer.${n}`, t]));
    const plain = planGguf(c.ckpt, c.sourceDir, parseTarget('gguf/f32'));
    const withPrefix = planGguf({ config: c.ckpt.config, tensors: prefixed }, c.sourceDir, parseTarget('gguf/f32'));
    expect(withPrefix.tensors.map((t) => [t.name, t.shape])).toEqual(plain.tensors.map((t) => [t.name, t.shape]));
  });
});

describe('reference converter: layouts', () => {
  it('llama: Q/K rows permuted (GGUF row h·hd + 2j + s = HF row h·hd + s·hd/2 + j), V untouched', () => {
    const c = get('llama-tiny');
    const d = commonDims(c.ckpt.config);
    const hd = d.headDim;
    const row = (data: Float32Array, r: number) => Array.from(data.subarray(r * d.hidden, (r + 1) * d.hidden));
    const q = tensorValues(c, 'gguf/f32', 'blk.0.attn_q.weight');
    const k = tensorValues(c, 'gguf/f32', 'blk.1.attn_k.weight');
    const hfQ = source(c, 'model.layers.0.self_attn.q_proj.weight');
    const hfK = source(c, 'model.layers.1.self_attn.k_proj.weight');
    // head 1, j = 3, s = 1 of q; last kv head, j = 0, s = 1 of k.
    expect(row(q, 1 * hd + 2 * 3 + 1)).toEqual(row(hfQ, 1 * hd + hd / 2 + 3));
    expect(row(q, 1 * hd + 2 * 3 + 1)).not.toEqual(row(hfQ, 1 * hd + 2 * 3 + 1));
    const h = d.kvHeads - 1;
    expect(row(k, h * hd + 1)).toEqual(row(hfK, h * hd + hd / 2));
    expect(tensorValues(c, 'gguf/f32', 'blk.0.attn_v.weight')).toEqual(source(c, 'model.layers.0.self_attn.v_proj.weight'));
  });

  it('qwen2: Q/K and their biases are not permuted; biases are F32 even at q8_0', () => {
    const c = get('qwen2-tiny');
    for (const [gguf, hf] of [
      ['blk.0.attn_q.weight', 'model.layers.0.self_attn.q_proj.weight'],
      ['blk.1.attn_k.weight', 'model.layers.1.self_attn.k_proj.weight'],
      ['blk.0.attn_q.bias', 'model.layers.0.self_attn.q_proj.bias'],
      ['blk.1.attn_k.bias', 'model.layers.1.self_attn.k_proj.bias'],
      ['blk.1.attn_v.bias', 'model.layers.1.self_attn.v_proj.bias'],
      ['output.weight', 'lm_head.weight'],
    ] as const) {
      expect(tensorValues(c, 'gguf/f32', gguf), gguf).toEqual(source(c, hf));
    }
    for (const name of ['blk.0.attn_q.bias', 'blk.0.attn_k.bias', 'blk.0.attn_v.bias']) {
      expect(c.files['gguf/q8_0'].file.tensors.find((t) => t.name === name)?.dtype, name).toBe('F32');
    }
    expect(c.files['gguf/q8_0'].file.tensors.find((t) => t.name === 'output.weight')?.dtype).toBe('Q8_0');
  });

  it('gpt2: Conv1D weights transposed from [in, out] to [out, in]; biases, norms, positions as stored', () => {
    const c = get('gpt2-tiny');
    const d = commonDims(c.ckpt.config);
    for (const [gguf, hf, inDim, outDim] of [
      ['blk.0.attn_qkv.weight', 'h.0.attn.c_attn.weight', d.hidden, 3 * d.hidden],
      ['blk.1.attn_output.weight', 'h.1.attn.c_proj.weight', d.hidden, d.hidden],
      ['blk.0.ffn_up.weight', 'h.0.mlp.c_fc.weight', d.hidden, d.ffn],
      ['blk.1.ffn_down.weight', 'h.1.mlp.c_proj.weight', d.ffn, d.hidden],
    ] as const) {
      const got = tensorValues(c, 'gguf/f32', gguf);
      const hfW = source(c, hf);
      for (const [o, i] of [
        [0, 1],
        [outDim - 1, inDim - 2],
        [Math.floor(outDim / 3), Math.floor(inDim / 2)],
      ] as const) {
        expect(got[o * inDim + i], `${gguf}[${o}, ${i}]`).toBe(hfW[i * outDim + o]);
      }
    }
    for (const [gguf, hf] of [
      ['token_embd.weight', 'wte.weight'],
      ['position_embd.weight', 'wpe.weight'],
      ['blk.0.attn_qkv.bias', 'h.0.attn.c_attn.bias'],
      ['blk.1.ffn_norm.bias', 'h.1.ln_2.bias'],
      ['output_norm.weight', 'ln_f.weight'],
    ] as const) {
      expect(tensorValues(c, 'gguf/f32', gguf), gguf).toEqual(source(c, hf));
    }
    const q8 = c.files['gguf/q8_0'].file.tensors;
    expect(q8.find((t) => t.name === 'position_embd.weight')?.dtype).toBe('F32');
    expect(q8.find((t) => t.name === 'token_embd.weight')?.dtype).toBe('Q8_0');
    expect(q8.some((t) => t.name === 'output.weight')).toBe(false);
  });
});

describe('reference converter: metadata', () => {
  const meta = (model: string, target: (typeof GGUF_TARGETS)[number] = 'gguf/q8_0'): Map<string, MetaValue> =>
    get(model).files[target].file.metadata;
  const num = (v: MetaValue | undefined): number | undefined => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined);

  it('llama-family keys under the arch prefix', () => {
    // The zoo's tokenizer is a ByteLevel BPE with GPT-2's split for every arch: llama.cpp's 'gpt-2'.
    for (const [model, arch, pre] of [
      ['llama-tiny', 'llama', 'gpt-2'],
      ['qwen2-tiny', 'qwen2', 'gpt-2'],
    ] as const) {
      const c = get(model).ckpt.config;
      if (isGpt2(c)) throw new Error('not llama-family');
      const m = meta(model);
      const want: Record<string, number> = {
        [`${arch}.vocab_size`]: c.vocab_size,
        [`${arch}.context_length`]: c.max_position_embeddings,
        [`${arch}.embedding_length`]: c.hidden_size,
        [`${arch}.block_count`]: c.num_hidden_layers,
        [`${arch}.feed_forward_length`]: c.intermediate_size,
        [`${arch}.attention.head_count`]: c.num_attention_heads,
        [`${arch}.attention.head_count_kv`]: c.num_key_value_heads,
        [`${arch}.attention.layer_norm_rms_epsilon`]: Math.fround(c.rms_norm_eps),
        [`${arch}.rope.freq_base`]: Math.fround(c.rope_theta),
        [`${arch}.rope.dimension_count`]: commonDims(c).headDim,
      };
      for (const [k, v] of Object.entries(want)) expect(num(m.get(k)), k).toBe(v);
      expect(m.get('general.architecture')).toBe(arch);
      expect(m.get('tokenizer.ggml.pre')).toBe(pre);
      expect([...m.keys()].filter((k) => k.startsWith(`${arch === 'llama' ? 'qwen2' : 'llama'}.`))).toEqual([]);
    }
  });

  it('gpt2 keys as GPT2Model.set_gguf_parameters writes them', () => {
    const c = get('gpt2-tiny').ckpt.config;
    if (!isGpt2(c)) throw new Error('not gpt2');
    const m = meta('gpt2-tiny');
    const want: Record<string, number> = {
      'gpt2.context_length': c.n_positions,
      'gpt2.embedding_length': c.n_embd,
      'gpt2.feed_forward_length': c.n_inner ?? 4 * c.n_embd,
      'gpt2.block_count': c.n_layer,
      'gpt2.attention.head_count': c.n_head,
      'gpt2.attention.layer_norm_epsilon': Math.fround(c.layer_norm_epsilon),
    };
    for (const [k, v] of Object.entries(want)) expect(num(m.get(k)), k).toBe(v);
    expect(m.get('general.architecture')).toBe('gpt2');
    expect(m.get('tokenizer.ggml.pre')).toBe('gpt-2');
    expect(m.has('gpt2.attention.layer_norm_rms_epsilon')).toBe(false);
  });

  it('general and tokenizer keys for every arch; quantization_version always (convert_hf_to_gguf and llama-quantize both write it)', () => {
    for (const model of MODELS) {
      const c = get(model).ckpt.config;
      for (const target of GGUF_TARGETS) {
        const m = meta(model, target);
        expect(num(m.get('general.file_type')), `${model} ${target}`).toBe(parseTarget(target).fileType);
        expect(num(m.get('general.quantization_version')), `${model} ${target}`).toBe(2);
        expect(m.get('tokenizer.ggml.model')).toBe('gpt2');
        expect((m.get('tokenizer.ggml.tokens') as MetaValue[]).length).toBe(commonDims(c).vocab);
        expect(num(m.get('tokenizer.ggml.bos_token_id'))).toBe(c.bos_token_id);
        expect(num(m.get('tokenizer.ggml.eos_token_id'))).toBe(c.eos_token_id);
      }
    }
  });
});

describe('reference converter: APR and safetensors keep HF names and layout', () => {
  const hfShapes = (ckpt: Checkpoint) => new Map([...ckpt.tensors].map(([n, t]) => [n, t.shape]));

  for (const model of MODELS) {
    it(`${model}: APR (aprender) — every HF tensor with its own shape, a tied lm_head synthesized from the embedding`, () => {
      const c = get(model);
      const tied = commonDims(c.ckpt.config).tied;
      for (const target of ['apr/f32', 'apr/int8'] as const) {
        const { file } = c.files[target];
        expect(file.format).toBe('apr');
        expect(file.issues).toEqual([]);
        const want = hfShapes(c.ckpt);
        const embd = isGpt2(c.ckpt.config) ? 'wte.weight' : 'model.embed_tokens.weight';
        if (tied) want.set('lm_head.weight', want.get(embd) ?? []);
        expect(new Map(file.tensors.map((t) => [t.name, t.shape]))).toEqual(want);
        if (tied) expect(tensorValues(c, target, 'lm_head.weight')).toEqual(tensorValues(c, target, embd));
      }
      // apr/f32 holds the source values exactly, in HF layout (GPT-2 Conv1D [in, out], llama Q/K unpermuted).
      for (const [name, t] of c.ckpt.tensors) expect(tensorValues(c, 'apr/f32', name), name).toEqual(t.data);
    });

    it(`${model}: APR metadata as AprV2Metadata (rope_type NEOX for HF-layout llama/qwen2, tied_embeddings, tokenizer)`, () => {
      const c = get(model);
      const cfg = c.ckpt.config;
      const d = commonDims(cfg);
      const json = (c.files['apr/int8'].file as AprFile).metadataJson ?? {};
      expect(json).toMatchObject({
        architecture: cfg.model_type,
        hidden_size: d.hidden,
        num_layers: d.layers,
        num_heads: d.heads,
        num_kv_heads: d.kvHeads,
        vocab_size: d.vocab,
        intermediate_size: d.ffn,
        max_position_embeddings: d.maxPositions,
        head_dim: d.headDim,
        quantization: { quant_type: 'int8', bits: 8 },
        'tokenizer.bos_token_id': cfg.bos_token_id,
        'tokenizer.eos_token_id': cfg.eos_token_id,
      });
      expect((json['tokenizer.vocabulary'] as unknown[]).length).toBe(d.vocab);
      expect(json['tied_embeddings']).toBe(d.tied ? true : undefined);
      if (isGpt2(cfg)) {
        expect(json['rms_norm_eps']).toBe(cfg.layer_norm_epsilon);
        expect(json['rope_type']).toBeUndefined();
      } else {
        expect(json).toMatchObject({ rope_type: 2, rope_theta: cfg.rope_theta, rms_norm_eps: cfg.rms_norm_eps });
      }
      expect(Object.keys(json['tensor_shapes'] as object).sort()).toEqual(c.files['apr/int8'].file.tensors.map((t) => t.name).sort());
    });

    it(`${model}: safetensors (save_pretrained) — every HF tensor in f16, no tied lm_head, {"format": "pt"}`, () => {
      const c = get(model);
      const { file } = c.files['safetensors/f16'];
      expect(file.format).toBe('safetensors');
      expect(file.issues).toEqual([]);
      expect(new Map(file.tensors.map((t) => [t.name, t.shape]))).toEqual(hfShapes(c.ckpt));
      expect(new Set(file.tensors.map((t) => t.dtype))).toEqual(new Set(['F16']));
      expect(file.metadata.get('format')).toBe('pt');
    });
  }

  it('the HF-layout manifest expects exactly what aprender and save_pretrained write (tied lm_head optional)', () => {
    for (const model of MODELS) {
      const c = get(model);
      const expected = expectedHfTensors(c.ckpt);
      const required = expected.filter((e) => !e.optional);
      expect(new Map(required.map((e) => [e.name, e.shape])), model).toEqual(
        new Map(c.files['safetensors/f16'].file.tensors.map((t) => [t.name, t.shape])),
      );
      expect(
        expected.filter((e) => e.optional).map((e) => e.name),
        model,
      ).toEqual(commonDims(c.ckpt.config).tied ? ['lm_head.weight'] : []);
      for (const e of expected) expect(tensorValues(c, 'apr/f32', e.name), `${model} ${e.name}`).toEqual(e.source);
    }
  });
});

describe('the lm_head mutants on APR, as aprender wrote them', () => {
  /** The mutant's file and its lm_head decoded (undefined when the bytes do not decode as declared). */
  const mutantFile = (id: string, target: string, model = 'llama-tiny'): { file: ModelFile; head: Float32Array | undefined } => {
    const m = findMutant(id);
    if (!m) throw new Error(`no ${id}`);
    const out = join(workDir, `${model}.${id.replace(/\W/g, '_')}.${target.replace('/', '_')}`);
    convertCheckpoint(get(model).sourceDir, parseTarget(target), out, m.mutate.bind(m));
    const src = new FileByteSource(out);
    try {
      const file = readModelFile(src);
      const t = file.tensors.find((x) => x.name === 'lm_head.weight');
      const n = t ? t.shape.reduce((a, b) => a * b, 1) : 0;
      return { file, head: t ? dequantize(t.dtype, readTensorBytes(src, t), n) : undefined };
    } finally {
      src.close();
    }
  };
  const N = 384 * 96;

  for (const target of ['apr/int8', 'apr/int4'] as const) {
    it(`${target}: lm-head-int8-as-f32 writes APR Q8 bytes ([f32 scale][i8 × N]) declared F32 with N/4+1 elements`, () => {
      const head = mutantFile('mutant:lm-head-int8-as-f32', target).file.tensors.find((t) => t.name === 'lm_head.weight');
      expect(head).toMatchObject({ dtype: 'F32', shape: [N / 4 + 1], byteLength: 4 + N, spanBytes: 4 + N });
    });
  }

  it('apr/int4: lm-head-zeros keeps APR_Q4 and the right size, every value 0', () => {
    const { file, head } = mutantFile('mutant:lm-head-zeros', 'apr/int4');
    expect(file.tensors.find((t) => t.name === 'lm_head.weight')).toMatchObject({
      dtype: 'APR_Q4',
      shape: [384, 96],
      byteLength: (N / 32) * 18,
    });
    expect(head?.length).toBe(N);
    expect(head?.every((v) => v === 0)).toBe(true);
  });
});
