/**
 * `tmgt inspect` and `tmgt diff`, end to end through bin/tmgt.js, plus the name map they rely on.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffModels, type DiffReport } from '../../src/cli/diff.js';
import { inspect, openModelFile, type InspectReport } from '../../src/cli/inspect.js';
import { ggufTensorMapping, permuteQk, transpose } from '../../src/zoo/gguf-names.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { aprTensorFromF32, writeAprFile } from '../../src/formats/apr/writer.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readGguf } from '../../src/formats/gguf/reader.js';
import { archFromHfNames, ggufToHf, hfToGguf, undoGgufLayout } from '../../src/formats/name-map.js';
import { pairMetrics, tensorStats } from '../../src/formats/stats.js';
import { buildModel } from '../../src/zoo/build.js';
import { hfTensorShapes, loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import type { HfConfig } from '../../src/zoo/types.js';

const BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;
const MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;

async function tmgt(args: string[]) {
  return execa(process.execPath, [BIN, ...args], { reject: false, stdin: 'ignore' });
}

/** JSON with the report's encoding of non-finite numbers ("Infinity", …) turned back into numbers. */
function parseReport<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v === 'NaN' ? NaN : v)) as T;
}

let dir: string;
const ckpt: Record<string, string> = {};
const out = (name: string): string => join(dir, name);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tmgt-inspect-diff-'));
  for (const m of MODELS) {
    ckpt[m] = await buildModel(findModelSpec(m));
    convertCheckpoint(ckpt[m] as string, parseTarget('gguf/f32'), out(`${m}-f32.gguf`));
  }
  convertCheckpoint(ckpt['llama-tiny'] as string, parseTarget('gguf/q8_0'), out('llama-tiny-q8_0.gguf'));
  // An APR v2 file of the same checkpoint (HF names): 2-D weights as APR Q8, the rest F32.
  const tensors = [...loadCheckpoint(ckpt['llama-tiny'] as string).tensors].map(([name, t]) =>
    aprTensorFromF32(name, t.shape, t.data, t.shape.length === 2 ? 'APR_Q8' : 'F32'),
  );
  writeAprFile(out('llama-tiny.apr'), { metadata: { model_type: 'llama', architecture: 'llama', num_heads: 6, num_kv_heads: 2 }, tensors });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tmgt inspect', () => {
  it('lists every tensor of a reference-converted GGUF with shape, dtype, bytes, offset and stats', async () => {
    const file = out('llama-tiny-q8_0.gguf');
    const r = await tmgt(['inspect', file, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = parseReport<InspectReport>(r.stdout);
    const src = new FileByteSource(file);
    const ours = readGguf(src);
    src.close();
    expect(report.format).toBe('gguf');
    expect(report.issues).toEqual([]);
    expect(report.gguf).toEqual({ version: 3, alignment: 32, dataOffset: ours.dataOffset });
    expect(report.tensorCount).toBe(20);
    expect(report.tensors.map((t) => [t.name, t.shape, t.dtype, t.offset, t.bytes])).toEqual(
      ours.tensors.map((t) => [t.name, t.shape, t.dtype, t.offset, t.byteLength]),
    );
    for (const t of report.tensors) {
      expect(t.stats, t.name).not.toBeNull();
      expect(t.stats?.count).toBe(t.shape.reduce((a, b) => a * b, 1));
      expect(t.stats?.nanCount).toBe(0);
      expect(t.stats?.infCount).toBe(0);
      expect(t.stats?.std).toBeGreaterThan(0);
      expect(t.dtype).toBe(t.shape.length === 1 ? 'F32' : 'Q8_0');
    }
    // Long arrays are summarised: type, length, first items.
    expect(report.metadata['tokenizer.ggml.tokens']).toMatchObject({ type: 'array', itemType: 'string', length: 384, isTruncated: true });
    expect((report.metadata['tokenizer.ggml.tokens'] as { first: unknown[] }).first).toHaveLength(8);
    expect(report.metadata['llama.attention.head_count']).toEqual({ type: 'u32', value: 6 });
    expect(report.metadata['llama.attention.layer_norm_rms_epsilon']).toEqual({ type: 'f32', value: 1e-5 });
  });

  it('reads the HF safetensors (file or checkpoint directory) with stats matching the values', async () => {
    const dirPath = ckpt['llama-tiny'] as string;
    const values = loadCheckpoint(dirPath).tensors;
    for (const target of [join(dirPath, 'model.safetensors'), dirPath]) {
      const r = await tmgt(['inspect', target, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const report = parseReport<InspectReport>(r.stdout);
      expect(report.format).toBe('safetensors');
      expect(report.tensorCount).toBe(values.size);
      for (const t of report.tensors) {
        const v = values.get(t.name);
        if (v === undefined) throw new Error(`unexpected tensor ${t.name}`);
        expect(t.shape).toEqual(v.shape);
        expect(t.dtype).toBe('F32');
        expect(t.stats).toEqual(tensorStats(v.data));
      }
    }
  });

  it('reads an APR v2 file (through readModelFile) and diffs it against the checkpoint by HF name', async () => {
    const r = await tmgt(['inspect', out('llama-tiny.apr'), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = parseReport<InspectReport>(r.stdout);
    expect(report.format).toBe('apr');
    expect(report.tensorCount).toBe(20);
    expect(report.metadata['num_heads']).toMatchObject({ value: 6 });
    for (const t of report.tensors) {
      expect(t.dtype).toBe(t.shape.length === 2 ? 'APR_Q8' : 'F32');
      expect(t.stats?.count, t.name).toBe(t.shape.reduce((a, b) => a * b, 1));
    }
    const a = openModelFile(join(ckpt['llama-tiny'] as string, 'model.safetensors'));
    const b = openModelFile(out('llama-tiny.apr'));
    try {
      const d = diffModels(a, b);
      expect(d.onlyInA).toEqual([]);
      expect(d.onlyInB).toEqual([]);
      for (const t of d.tensors) {
        if (t.a.shape.length === 1) expect(t.metrics?.isIdentical, t.key).toBe(true);
        // One scale per tensor (max|x|/127): coarser than Q8_0's per-32 scales.
        else expect(t.metrics?.sqnrDb, t.key).toBeGreaterThan(30);
      }
    } finally {
      a.close();
      b.close();
    }
  });

  it('prints a readable table without --json', async () => {
    const r = await tmgt(['inspect', out('llama-tiny-f32.gguf')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/gguf, \d+ bytes, 20 tensors/);
    expect(r.stdout).toMatch(/tokenizer\.ggml\.tokens = \[string × 384\]/);
    expect(r.stdout).toMatch(/^blk\.0\.attn_q\.weight\s+\[96, 96\]\s+F32\s+36864/m);
  });

  it('malformed files: prints the F-FILE verdicts and exits 1; an unreadable path exits 2', async () => {
    const whole = readFileSync(out('llama-tiny-f32.gguf'));
    writeFileSync(out('truncated.gguf'), whole.subarray(0, whole.length - 1000));
    writeFileSync(out('garbage.bin'), Buffer.from('this is not a model file at all'));
    const truncated = await tmgt(['inspect', out('truncated.gguf'), '--json']);
    expect(truncated.exitCode).toBe(1);
    expect(parseReport<InspectReport>(truncated.stdout).issues.map((i) => i.code)).toContain('F-FILE-002');
    const garbage = await tmgt(['inspect', out('garbage.bin')]);
    expect(garbage.exitCode).toBe(1);
    expect(garbage.stdout).toMatch(/F-FILE-001/);
    const missing = await tmgt(['inspect', out('no-such-file.gguf')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*no-such-file\.gguf/);
  });
});

describe('tmgt diff', () => {
  it('HF model.safetensors vs its gguf/q8_0 conversion: SQNR ≥ 40 dB for 2-D weights, 1-D tensors exact', async () => {
    const hf = join(ckpt['llama-tiny'] as string, 'model.safetensors');
    const r = await tmgt(['diff', hf, out('llama-tiny-q8_0.gguf'), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = parseReport<DiffReport>(r.stdout);
    expect(report.arch).toBe('llama');
    expect(report.onlyInA).toEqual([]);
    expect(report.onlyInB).toEqual([]);
    expect(report.tensors).toHaveLength(20);
    for (const t of report.tensors) {
      expect(t.isShapeEqual, t.key).toBe(true);
      const m = t.metrics;
      if (m === null) throw new Error(`${t.key}: no metrics (${t.error ?? ''})`);
      if (t.a.shape.length === 1) {
        expect(m.isIdentical, t.key).toBe(true);
        expect(m.maxAbsDiff).toBe(0);
        expect(m.sqnrDb).toBe(Infinity);
      } else {
        expect(t.b.dtype).toBe('Q8_0');
        expect(m.sqnrDb, t.key).toBeGreaterThanOrEqual(40);
        expect(m.cosine, t.key).toBeGreaterThan(0.9999);
      }
    }
    // The Q/K permutation was undone on the GGUF side (a wrong row order would sit near 0 dB).
    const undone = report.tensors.filter((t) => t.b.undone !== 'none').map((t) => `${t.b.name}:${t.b.undone}`);
    expect(undone.sort()).toEqual([
      'blk.0.attn_k.weight:permute-k',
      'blk.0.attn_q.weight:permute-q',
      'blk.1.attn_k.weight:permute-k',
      'blk.1.attn_q.weight:permute-q',
    ]);
  });

  it.each(MODELS)('%s: an f32 conversion is identical to the checkpoint once layouts are undone (either order)', async (model) => {
    const hf = join(ckpt[model] as string, 'model.safetensors');
    const check = (report: DiffReport): void => {
      expect(report.arch).toBe(model.replace('-tiny', ''));
      expect(report.onlyInA).toEqual([]);
      expect(report.onlyInB).toEqual([]);
      expect(report.summary.matched).toBe(report.a.tensorCount);
      expect(report.summary.identical, JSON.stringify(report.tensors.filter((t) => !t.metrics?.isIdentical).map((t) => t.key))).toBe(
        report.summary.matched,
      );
    };
    const r = await tmgt(['diff', hf, out(`${model}-f32.gguf`), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    check(parseReport<DiffReport>(r.stdout));
    // The other order in process (a subprocess costs seconds of tsx start-up).
    const a = openModelFile(out(`${model}-f32.gguf`));
    const b = openModelFile(hf);
    try {
      check(diffModels(a, b));
    } finally {
      a.close();
      b.close();
    }
  });

  it('gguf vs gguf: names match verbatim, nothing undone, dtype changes reported', async () => {
    const r = await tmgt(['diff', out('llama-tiny-f32.gguf'), out('llama-tiny-q8_0.gguf')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/20 matched, 5 identical, 0 shape and 15 dtype differences/);
    expect(r.stdout).toMatch(/blk\.0\.attn_q\.weight\s+\[96, 96\]\s+F32→Q8_0\s+\d/);
  });

  it('reports shape differences and unmatched names', async () => {
    const r = await tmgt(['diff', out('llama-tiny-f32.gguf'), out('qwen2-tiny-f32.gguf'), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = parseReport<DiffReport>(r.stdout);
    const q = report.tensors.find((t) => t.key === 'blk.0.attn_q.weight');
    expect(q?.isShapeEqual).toBe(false);
    expect(q?.metrics).toBeNull();
    expect(report.onlyInB).toEqual(expect.arrayContaining(['output.weight', 'blk.0.attn_q.bias']));
  });

  it('exits 2 when an input cannot be read (missing, or not a model file)', async () => {
    writeFileSync(out('garbage2.bin'), Buffer.from('{"not": "safetensors"}'));
    const missing = await tmgt(['diff', out('llama-tiny-f32.gguf'), out('nope.gguf')]);
    expect(missing.exitCode).toBe(2);
    const garbage = await tmgt(['diff', out('garbage2.bin'), out('llama-tiny-f32.gguf')]);
    expect(garbage.exitCode).toBe(2);
    expect(garbage.stderr).toMatch(/F-FILE-001/);
  });
});

describe('name map (src/formats/name-map.ts)', () => {
  const configs = MODELS.map((m) => {
    const spec = findModelSpec(m);
    if (spec.kind === 'checkpoint' || spec.kind === 'derived') throw new Error(`${m} is not a built-in spec`);
    return [m, spec.config] as const;
  });

  it.each(configs)('%s: agrees with the reference converter forward map and round-trips GGUF → HF', (_m, config: HfConfig) => {
    const arch = config.model_type;
    for (const hfName of hfTensorShapes(config).keys()) {
      const mine = hfToGguf(arch, hfName);
      expect(mine, hfName).toEqual(ggufTensorMapping(arch, hfName));
      if (mine === undefined) continue;
      expect(ggufToHf(arch, mine.name), mine.name).toEqual({ name: hfName, transform: mine.transform });
    }
    expect(archFromHfNames(hfTensorShapes(config).keys())).toBe(arch === 'gpt2' ? 'gpt2' : 'llama');
  });

  it('GPT-2 names with the transformer. prefix map too; unknown names do not', () => {
    expect(hfToGguf('gpt2', 'transformer.h.3.attn.c_attn.weight')).toEqual({ name: 'blk.3.attn_qkv.weight', transform: 'transpose' });
    expect(hfToGguf('gpt2', 'h.0.attn.bias')).toBeUndefined();
    expect(hfToGguf('llama', 'model.layers.0.self_attn.rotary_emb.inv_freq')).toBeUndefined();
    expect(hfToGguf('qwen2', 'model.layers.1.self_attn.k_proj.bias')).toEqual({ name: 'blk.1.attn_k.bias', transform: 'none' });
    expect(hfToGguf('llama', 'model.layers.1.self_attn.k_proj.bias')).toEqual({ name: 'blk.1.attn_k.bias', transform: 'permute-k' });
  });

  it('undoGgufLayout inverts the converter’s permute and transpose', () => {
    const data = Float32Array.from({ length: 8 * 5 }, (_, i) => i * 1.5 - 7);
    for (const [heads, kvHeads] of [
      [4, 2],
      [2, 2],
      [1, 1],
    ] as const) {
      const q = undoGgufLayout('permute-q', permuteQk(data, 8, 5, heads), [8, 5], { heads, kvHeads });
      expect(q.values).toEqual(data);
      const k = undoGgufLayout('permute-k', permuteQk(data, 8, 5, kvHeads), [8, 5], { heads, kvHeads });
      expect(k.values).toEqual(data);
      const bias = data.subarray(0, 8);
      expect(undoGgufLayout('permute-q', permuteQk(bias, 8, 1, heads), [8], { heads, kvHeads }).values).toEqual(bias);
    }
    const t = undoGgufLayout('transpose', transpose(data, 8, 5), [5, 8]);
    expect(t.shape).toEqual([8, 5]);
    expect(t.values).toEqual(data);
    expect(() => undoGgufLayout('permute-q', data, [8, 5])).toThrow(/head counts/);
  });

  it('pairMetrics: SQNR, cosine and max |a−b| on hand-computed cases', () => {
    const a = Float32Array.from([3, 4]);
    expect(pairMetrics(a, a)).toEqual({ sqnrDb: Infinity, cosine: 1, maxAbsDiff: 0, isIdentical: true, nonFiniteCount: 0 });
    const m = pairMetrics(a, Float32Array.from([3, 4.5]));
    expect(m.sqnrDb).toBeCloseTo(20 * Math.log10(5 / 0.5), 12);
    expect(m.maxAbsDiff).toBe(0.5);
    expect(m.cosine).toBeCloseTo((9 + 18) / (5 * Math.hypot(3, 4.5)), 12);
    expect(pairMetrics(new Float32Array(2), a).sqnrDb).toBe(-Infinity);
    expect(pairMetrics(Float32Array.from([NaN, 1]), Float32Array.from([NaN, 1])).isIdentical).toBe(true);
    expect(pairMetrics(Float32Array.from([NaN, 1]), Float32Array.from([0, 1])).sqnrDb).toBe(-Infinity);
  });

  it('tensorStats: NaN/Inf counted apart from the finite values', () => {
    expect(tensorStats(Float32Array.from([0, 2, NaN, Infinity, -Infinity, 4]))).toEqual({
      count: 6,
      mean: 2,
      std: Math.sqrt(8 / 3),
      min: 0,
      max: 4,
      zeroFraction: 1 / 6,
      nanCount: 1,
      infCount: 2,
    });
    expect(tensorStats(new Float32Array(0))).toEqual({
      count: 0,
      mean: null,
      std: null,
      min: null,
      max: null,
      zeroFraction: 0,
      nanCount: 0,
      infCount: 0,
    });
  });
});

describe('file-derived strings never reach the terminal as control sequences', () => {
  it('a tensor name holding an escape sequence is printed escaped by tmgt inspect', async () => {
    const { writeGgufFile } = await import('../../src/formats/gguf/writer.js');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const path = join(mkdtempSync(join(tmpdir(), 'tmgt-esc-')), 'esc.gguf');
    const evil = 'w\u001b]0;pwned\u0007\u001b[2J';
    writeGgufFile(path, {
      kvs: [{ key: 'general.name', type: 'string', value: 'n\u001b[31mred' }],
      tensors: [{ name: evil, shape: [4], dtype: 'F32', data: new Uint8Array(16) }],
    });
    let text = '';
    inspect([path], (s) => (text += s));
    expect(text).not.toMatch(/\u001b|\u0007/);
    expect(text).toContain('w\\u001b]0;pwned\\u0007\\u001b[2J');
  });
});
