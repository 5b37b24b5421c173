/**
 * Round trip A → B → A′ → B′ on real zoo checkpoints and real reference-converted GGUFs; one failing case
 * for each half (a value changed by one ULP; a tensor table in another order) and for each artifact kind.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRoundtrip, type RoundtripOptions } from '../../src/checks/roundtrip.js';
import { ggufToHfCheckpoint } from '../../src/converters/gguf-to-hf.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget, type Target } from '../../src/converters/targets.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-roundtrip-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

async function artifact(model: string, name: string, target: Target, mutate?: Parameters<typeof convertCheckpoint>[3]) {
  const sourceDir = await buildModel(findModelSpec(model));
  const path = join(workDir, `${model}-${name}.gguf`);
  convertCheckpoint(sourceDir, target, path, mutate);
  // Re-converted by the reference at the same target: a mutated artifact must then differ where the mutation is.
  const opts: RoundtripOptions = { toHf: ggufToHfCheckpoint, reconvert: (dir, out) => convertCheckpoint(dir, target, out) };
  return { sourceDir, path, opts };
}

describe('checkRoundtrip: reference f32 artifacts round-trip exactly', () => {
  it.each(['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'])('%s: every tensor bit-identical, re-conversion byte-identical', async (model) => {
    const { sourceDir, path, opts } = await artifact(model, 'f32', parseTarget('gguf/f32'));
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.verdicts).toEqual([]);
    expect(r.status).toBe('pass');
    expect(r.metrics?.['tensorsMatching']).toBe(r.metrics?.['tensors']);
    expect(r.metrics?.['tensors']).toBeGreaterThan(10);
    expect(r.metrics?.['reconvertedByteIdentical']).toBe(1);
    expect(r.metrics?.['safetensorsByteIdentical']).toBe(1);
  });

  it('ggufToHfCheckpoint undoes the llama Q/K permutation and writes F32 with config and tokenizer copied', async () => {
    const { sourceDir, path } = await artifact('llama-tiny', 'f32-direct', parseTarget('gguf/f32'));
    const out = join(workDir, 'direct', 'llama-tiny');
    const back = ggufToHfCheckpoint(path, sourceDir, out);
    expect(back.arch).toBe('llama');
    expect(back.copied).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json']));
    expect(readFileSync(join(out, 'config.json'))).toEqual(readFileSync(join(sourceDir, 'config.json')));
    const a = loadCheckpoint(sourceDir).tensors.get('model.layers.0.self_attn.q_proj.weight');
    const a2 = loadCheckpoint(out).tensors.get('model.layers.0.self_attn.q_proj.weight');
    expect(a2?.shape).toEqual(a?.shape);
    expect(Buffer.from(a2?.data.buffer ?? new ArrayBuffer(0)).equals(Buffer.from(a?.data.buffer ?? new ArrayBuffer(1)))).toBe(true);
  });

  it('f16: half-stored weights equal the round-to-nearest-even f16 of the source, F32 tensors exact', async () => {
    const { sourceDir, path, opts } = await artifact('qwen2-tiny', 'f16', parseTarget('gguf/f16'));
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.verdicts).toEqual([]);
    expect(r.metrics?.['tensorsHalfRounded']).toBeGreaterThan(0);
    expect(r.metrics?.['reconvertedByteIdentical']).toBe(1);
    expect(parseTarget('gguf/f16').roundtrip).toBe(true);
    expect(parseTarget('gguf/q8_0').roundtrip).toBe(false);
  });

  it('bf16 with a converter given to re-convert with', async () => {
    const bf16 = parseTarget('gguf/bf16');
    const { sourceDir, path, opts } = await artifact('gpt2-tiny', 'bf16', bf16);
    let calls = 0;
    const r = await checkRoundtrip(sourceDir, path, workDir, {
      ...opts,
      reconvert: (dir, out) => void (calls++, convertCheckpoint(dir, bf16, out)),
    });
    expect(r.verdicts).toEqual([]);
    expect(calls).toBe(1);
    expect(r.metrics?.['tensorsHalfRounded']).toBeGreaterThan(0);
  });

  it('no converter to re-convert with: the tensor data is still judged, the bytes are not', async () => {
    const { sourceDir, path, opts } = await artifact('llama-tiny', 'ftype14', parseTarget('gguf/f32'), (plan) => {
      const ft = plan.format === 'gguf' ? plan.kvs.find((k) => k.key === 'general.file_type') : undefined;
      if (!ft) throw new Error('no general.file_type');
      ft.value = 14; // MOSTLY_Q4_K_S: no reference target
    });
    const r = await checkRoundtrip(sourceDir, path, workDir, { toHf: opts.toHf });
    expect(r.status).toBe('pass');
    expect(r.verdicts).toEqual([]);
    expect(r.metrics?.['reconverted']).toBe(0);
    expect(r.metrics?.['tensorsMatching']).toBe(r.metrics?.['tensors']);
  });
});

describe('checkRoundtrip fails where A → B → A or B → A → B is not identical', () => {
  it('one value one ULP off in blk.0.attn_q: names the HF tensor, the element and both values', async () => {
    const { sourceDir, path, opts } = await artifact('llama-tiny', 'ulp', parseTarget('gguf/f32'), (plan) => {
      const t = plan.tensors.find((x) => x.name === 'blk.0.attn_q.weight');
      if (!t) throw new Error('no blk.0.attn_q.weight');
      const bits = new Uint32Array(t.values.buffer.slice(0));
      bits[5] = (bits[5] as number) + 1;
      t.values = new Float32Array(bits.buffer);
    });
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.status).toBe('fail');
    expect(r.verdicts).toHaveLength(1);
    const v = r.verdicts[0];
    expect(v?.code).toBe('F-ROUNDTRIP-001');
    expect(v?.tensor).toBe('model.layers.0.self_attn.q_proj.weight');
    expect(v?.evidence['differing']).toBe(1);
    expect(v?.message).toMatch(/1 of 9216 values differ/);
    // B′ is made from A′, which carries the change, so the second half holds.
    expect(r.metrics?.['reconvertedByteIdentical']).toBe(1);
  });

  it('an f32 artifact that stores one weight as F16 fails the bit-identity requirement', async () => {
    const { sourceDir, path, opts } = await artifact('gpt2-tiny', 'one-f16', parseTarget('gguf/f32'), (plan) => {
      const t = plan.tensors.find((x) => x.name === 'blk.1.ffn_down.weight');
      if (!t) throw new Error('no blk.1.ffn_down.weight');
      t.dtype = 'F16';
    });
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.status).toBe('fail');
    const v = r.verdicts.find((x) => x.tensor === 'h.1.mlp.c_proj.weight');
    expect(v?.evidence['storedAs']).toBe('F16');
    expect(v?.evidence['requirement']).toBe('bit-identical to the source');
  });

  it('tensors written in another order: A′ is exact but B′ differs from B, located in the header', async () => {
    const { sourceDir, path, opts } = await artifact('llama-tiny', 'order', parseTarget('gguf/f32'), (plan) => {
      plan.tensors.reverse();
    });
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.status).toBe('fail');
    expect(r.metrics?.['tensorsMatching']).toBe(r.metrics?.['tensors']);
    expect(r.verdicts).toHaveLength(1);
    expect(r.verdicts[0]?.message).toMatch(/does not give the artifact back: first difference at byte \d+, in the header/);
    expect(r.verdicts[0]?.evidence['tensorOrderSame']).toBe(false);
  });

  it('a tensor the name map does not know is a verdict, not a throw', async () => {
    const { sourceDir, path, opts } = await artifact('llama-tiny', 'unmapped', parseTarget('gguf/f32'), (plan) => {
      const t = plan.tensors.find((x) => x.name === 'blk.0.ffn_up.weight');
      if (t) t.name = 'blk.0.ffn_upp.weight';
    });
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.status).toBe('fail');
    expect(r.verdicts[0]?.message).toMatch(/cannot be converted back.*'blk\.0\.ffn_upp\.weight' has no HF name/);
  });

  it.each([
    [3, /values differ after the round trip/],
    [5, /cannot undo the permute-q layout of 'blk\.0\.attn_q\.weight'/],
  ] as const)('head_count %i in the metadata (the weights are for 6): the Q/K layout cannot be undone', async (heads, message) => {
    const { sourceDir, path, opts } = await artifact('llama-tiny', `heads-${heads}`, parseTarget('gguf/f32'), (plan) => {
      const kv = plan.format === 'gguf' ? plan.kvs.find((k) => k.key === 'llama.attention.head_count') : undefined;
      if (!kv) throw new Error('no llama.attention.head_count');
      kv.value = heads;
    });
    const r = await checkRoundtrip(sourceDir, path, workDir, opts);
    expect(r.status).toBe('fail');
    expect(r.verdicts[0]?.message).toMatch(message);
  });
});
