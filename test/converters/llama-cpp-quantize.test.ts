/**
 * llama.cpp's own quantizer (`llama_model_quantize` from node-llama-cpp's shipped libllama, through koffi, in a
 * child process) as a built-in converter: byte-exact against the golden files `llama-quantize` of the same release
 * wrote, failures as values, and on every tiny zoo model at all nine types, tensor for tensor what the reference
 * converter writes.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConverter, type ConvertRequest, type ConvertResult } from '../../src/converters/adapter.js';
import {
  convertWithLlamaCpp,
  LLAMA_CPP_FTYPES,
  locateLlamaLibrary,
  quantizeWithLlamaCpp,
  type LlamaCppQuantType,
} from '../../src/converters/llama-cpp-quantize.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readGguf, readTensorBytes } from '../../src/formats/gguf/reader.js';
import { writeGgufFile, type GgufKv } from '../../src/formats/gguf/writer.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';

const FIXTURES = new URL('../fixtures/llamacpp/', import.meta.url).pathname;
const TYPES = Object.keys(LLAMA_CPP_FTYPES) as LlamaCppQuantType[];
const ZOO = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny', 'llama-tiny-heavy', 'qwen2-tiny-heavy', 'gpt2-tiny-heavy'] as const;
const work = mkdtempSync(join(tmpdir(), 'tmgt-llamacpp-quant-'));

/** Wall time of each conversion (child start-up + llama_model_quantize + rename), printed at the end. */
const timings: { what: string; durationMs: number }[] = [];
afterAll(() => {
  if (timings.length === 0) return;
  const ms = timings.map((t) => t.durationMs).sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)] ?? 0;
  console.log(`llama.cpp quantizer: ${timings.length} conversions, median ${median.toFixed(0)} ms, max ${(ms.at(-1) ?? 0).toFixed(0)} ms`);
  for (const t of timings) console.log(`  ${t.what.padEnd(24)} ${t.durationMs.toFixed(0).padStart(6)} ms`);
});

function expectOk(r: ConvertResult): asserts r is Extract<ConvertResult, { status: 'ok' }> {
  if (r.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(r)}`);
}

describe('the shipped libllama', () => {
  it('is found by resolving node-llama-cpp, not by a fixed path', () => {
    const lib = locateLlamaLibrary();
    expect(lib.found).toBe(true);
    if (lib.found) expect(lib.path).toMatch(/@node-llama-cpp\/[^/]+\/bins\/[^/]+\/(lib)?llama(\.v[0-9.]+)?\.(so|dylib|dll)$/);
  });
});

describe('byte-identical to llama-quantize --pure of the same release (test/fixtures/llamacpp)', () => {
  it.each(TYPES)('%s', async (type) => {
    const out = join(work, `fixture.${type}.gguf`);
    const inGguf = join(FIXTURES, 'tiny-llama-f32.gguf');
    const r = await quantizeWithLlamaCpp({ inGguf, outGguf: out, type, timeoutMs: 60_000, pure: true });
    expectOk(r);
    timings.push({ what: `fixture ${type}`, durationMs: r.durationMs });
    const got = readFileSync(out);
    const want = readFileSync(join(FIXTURES, `tiny-llama-${type}.gguf`));
    expect(got.length).toBe(want.length);
    // The first differing offset, not a megabyte diff, is what a failure should print.
    const first = got.findIndex((b, i) => b !== want[i]);
    expect(first).toBe(-1);
  });
});

describe('failures are values', () => {
  it("an input that is not a GGUF: failed, with llama.cpp's own message, and no output file", async () => {
    const bad = join(work, 'not-a-gguf.gguf');
    writeFileSync(bad, 'this is not a GGUF file\n');
    const out = join(work, 'not-a-gguf.q8_0.gguf');
    const r = await quantizeWithLlamaCpp({ inGguf: bad, outGguf: out, type: 'q8_0', timeoutMs: 60_000 });
    expect(r.status).toBe('failed');
    if (r.status !== 'failed') return;
    expect(r.exitCode).toBe(1);
    expect(r.log).toMatch(/invalid magic characters/);
    expect(r.reason).toMatch(/llama_model_quantize \(q8_0\)/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  it('a GGUF that makes llama.cpp abort (llama.block_count 0 → GGML_ASSERT, SIGABRT): failed, the harness lives on', async () => {
    // Rewrite the golden f32 file with one hyperparameter changed; everything else stays valid.
    const src = new FileByteSource(join(FIXTURES, 'tiny-llama-f32.gguf'));
    const zeroLayers = join(work, 'zero-layers.gguf');
    try {
      const f = readGguf(src);
      const kvs: GgufKv[] = [...f.metadata].map(([key, value]) => {
        const t = f.kvTypes.get(key);
        if (!t) throw new Error(`no type for ${key}`);
        const itemType = t.itemType === 'array' ? undefined : t.itemType;
        // MetaValue and GgufKv's value are the same shapes (scalars and flat arrays) for this file's keys.
        return { key, type: t.type, itemType, value: (key === 'llama.block_count' ? 0 : value) as GgufKv['value'] };
      });
      const tensors = f.tensors.map((e) => ({ name: e.name, shape: e.shape, dtype: e.dtype, data: readTensorBytes(src, e) }));
      writeGgufFile(zeroLayers, { kvs, tensors });
    } finally {
      src.close();
    }
    const out = join(work, 'zero-layers.q8_0.gguf');
    const r = await quantizeWithLlamaCpp({ inGguf: zeroLayers, outGguf: out, type: 'q8_0', timeoutMs: 60_000 });
    expect(r.status).toBe('failed');
    if (r.status !== 'failed') return;
    expect(r.signal).toBe('SIGABRT');
    expect(r.log).toMatch(/GGML_ASSERT\(hparams\.n_layer_all > 0/);
    expect(existsSync(out)).toBe(false);
  });

  it('a truncated GGUF: failed', async () => {
    const truncated = join(work, 'truncated.gguf');
    writeFileSync(truncated, readFileSync(join(FIXTURES, 'tiny-llama-f32.gguf')).subarray(0, 4096));
    const outGguf = join(work, 'truncated.q4_0.gguf');
    const r = await quantizeWithLlamaCpp({ inGguf: truncated, outGguf, type: 'q4_0', timeoutMs: 60_000 });
    expect(r.status).toBe('failed');
  });

  const posix = process.platform !== 'win32';
  it.runIf(posix)('a quantizer that hangs (its input is a FIFO nobody writes): killed at the timeout, failed', async () => {
    const fifo = join(work, 'hang.fifo');
    await execa('mkfifo', [fifo]);
    const start = performance.now();
    const r = await quantizeWithLlamaCpp({ inGguf: fifo, outGguf: join(work, 'hang.q8_0.gguf'), type: 'q8_0', timeoutMs: 1500 });
    expect(r.status).toBe('failed');
    if (r.status !== 'failed') return;
    expect(r.timedOut).toBe(true);
    expect(r.reason).toMatch(/timed out after 1500 ms/);
    expect(performance.now() - start).toBeLessThan(10_000);
  });

  it('no node-llama-cpp to resolve: skipped, with the reason', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'tmgt-no-nlc-'));
    expect(locateLlamaLibrary(elsewhere).found).toBe(false);
    const inGguf = join(FIXTURES, 'tiny-llama-f32.gguf');
    const outGguf = join(work, 'x.gguf');
    const r = await quantizeWithLlamaCpp({ inGguf, outGguf, type: 'q8_0', timeoutMs: 60_000, resolveFrom: elsewhere });
    expect(r).toEqual({ status: 'skipped', reason: expect.stringMatching(/node-llama-cpp is not installed/) });
  });

  it('the matrix entry skips targets it does not offer and passes a failed f32 conversion through', async () => {
    const req = (target: string): ConvertRequest => ({
      converter: 'llama.cpp',
      model: 'm',
      sourceDir: work,
      target: parseTarget(target),
      outDir: work,
      timeoutMs: 60_000,
    });
    const never = (): Promise<ConvertResult> => Promise.reject(new Error('must not be called'));
    for (const t of ['gguf/f32', 'apr/int8', 'safetensors/bf16']) expect((await convertWithLlamaCpp(req(t), never)).status).toBe('skipped');
    const failedF32: ConvertResult = {
      status: 'failed',
      exitCode: 2,
      signal: undefined,
      timedOut: false,
      durationMs: 1,
      log: 'boom',
      reason: 'exited with code 2',
    };
    expect(await convertWithLlamaCpp(req('gguf/q8_0'), () => Promise.resolve(failedF32))).toBe(failedF32);
  });
});

/**
 * llama.cpp's non-pure rules on the reference converter's f32 GGUF of each tiny zoo model: the file reads back
 * without issues, says its ftype, and every tensor (name, stored type, bytes) and metadata value equals what the
 * reference converter writes for the same target — the reference emulates llama-quantize (src/converters/targets.ts),
 * so any difference is a bug in one of the two.
 */
describe.each(ZOO)('%s: reference f32 GGUF → llama.cpp quantizer, nine types', (model) => {
  let sourceDir = '';
  const outDir = join(work, model);
  const converted = new Map<LlamaCppQuantType, ConvertResult>();

  beforeAll(async () => {
    sourceDir = await buildModel(findModelSpec(model));
    const f32Target = parseTarget('gguf/f32');
    const f32 = await runConverter({ converter: 'reference', model, sourceDir, target: f32Target, outDir, timeoutMs: 120_000 });
    expectOk(f32);
    // Two conversions at a time: most of a conversion is the child's start-up, which overlaps well.
    const queue = [...TYPES];
    const worker = async () => {
      for (let type = queue.shift(); type !== undefined; type = queue.shift()) {
        const req = { converter: 'llama.cpp', model, sourceDir, target: parseTarget(`gguf/${type}`), outDir, timeoutMs: 120_000 };
        converted.set(type, await convertWithLlamaCpp(req, () => Promise.resolve(f32)));
      }
    };
    await Promise.all([worker(), worker()]);
  });

  it.each(TYPES)('%s', (type) => {
    const target = parseTarget(`gguf/${type}`);
    const got = converted.get(type) ?? { status: 'skipped', reason: 'not converted' };
    expectOk(got);
    timings.push({ what: `${model} ${type}`, durationMs: got.durationMs });
    const refPath = join(outDir, `${model}.reference-inproc.${type}.gguf`);
    convertCheckpoint(sourceDir, target, refPath);

    const a = new FileByteSource(got.artifact);
    const b = new FileByteSource(refPath);
    try {
      const cpp = readGguf(a);
      const ref = readGguf(b);
      expect(cpp.issues).toEqual([]);
      expect(cpp.metadata.get('general.file_type')).toBe(LLAMA_CPP_FTYPES[type]);
      const listed = (f: typeof cpp) => f.tensors.map((t) => `${t.name}:${t.dtype}`);
      // The reference writes f16/bf16 as convert_hf_to_gguf --outtype does (its tensor order); llama_model_quantize
      // writes every type in its loader's order, the one the reference uses for llama-quantize targets. Same tensors,
      // stored types and bytes; only the order differs, as it does between the two real tools.
      if (target.producer === 'llama-quantize') expect(listed(cpp)).toEqual(listed(ref));
      else expect(listed(cpp).sort()).toEqual(listed(ref).sort());
      const differing = cpp.tensors.filter((t) => {
        const r = ref.tensors.find((x) => x.name === t.name);
        return r === undefined || !Buffer.from(readTensorBytes(a, t)).equals(Buffer.from(readTensorBytes(b, r)));
      });
      expect(differing.map((t) => t.name)).toEqual([]);
      // Same keys and values; only their order in the header differs (llama.cpp copies the input's, then sets its own).
      const kv = (f: typeof cpp) => Object.fromEntries([...f.metadata].map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));
      expect(kv(cpp)).toEqual(kv(ref));
    } finally {
      a.close();
      b.close();
    }
  });
});
