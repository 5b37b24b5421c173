/**
 * Malformed-input fuzzing for the three readers: 10,000 mutated or truncated files per format, built
 * from a small valid file made in code. Every read must return (no exception), within a time bound,
 * with every issue carrying a file code and no internal error; every tensor the reader did not flag
 * as out of bounds must decode. Plus explicit huge-count / huge-size cases that must be rejected fast
 * without big allocations.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aprFields, aprGood, apply, ggufFields, ggufGood, mutatedSeed, mutations, reseal, stGood, u64At } from '../../fuzz/seeds.js';
import { readApr, readAprTensorF32 } from '../../src/formats/apr/reader.js';
import { encodeApr } from '../../src/formats/apr/writer.js';
import { BufferByteSource, type ByteSource } from '../../src/formats/byte-source.js';
import { canDequantize } from '../../src/formats/codecs/index.js';
import { readGguf, readTensorF32 } from '../../src/formats/gguf/reader.js';
import { encodeGguf } from '../../src/formats/gguf/writer.js';
import { readModelFile } from '../../src/formats/read-model.js';
import { readSafetensors, readSafetensorsTensorF32 } from '../../src/formats/safetensors/reader.js';
import { encodeSafetensors } from '../../src/formats/safetensors/writer.js';
import type { FileCode, ModelFile, TensorEntry } from '../../src/formats/types.js';

const RUNS = 10_000;
/** Per-read bound: the small files here read in well under a millisecond; 50 ms leaves room for GC pauses. */
const READ_LIMIT_MS = 50;
/**
 * A read over the limit is repeated this many times and fails only if every attempt is over: a slow
 * path in a reader is deterministic, a GC pause or a busy shared core is not.
 */
const READ_ATTEMPTS = 3;
const FILE_CODES: ReadonlySet<string> = new Set<FileCode>(['F-FILE-001', 'F-FILE-002', 'F-FILE-003', 'F-FILE-004']);

// Seed files, field locators and mutations live in fuzz/seeds.ts, shared with `make fuzz`.

// --- the property ---------------------------------------------------------------------------------

interface Stats {
  withIssues: number;
  seen: Set<FileCode>;
  decodedTensors: number;
  slowestMs: number;
}

function fail(message: string): never {
  throw new Error(message);
}

/** Read, time, and check one mutated file (plain throws instead of expect(): 10,000 runs per format). */
function checkOne(
  bytes: Uint8Array,
  readFile: (src: ByteSource) => ModelFile,
  decode: (src: ByteSource, t: TensorEntry) => Float32Array,
  stats: Stats,
): void {
  const src = new BufferByteSource(bytes);
  let f: ModelFile | undefined;
  let ms = Infinity;
  for (let attempt = 0; attempt < READ_ATTEMPTS && ms >= READ_LIMIT_MS; attempt++) {
    const t0 = performance.now();
    f = readFile(src);
    ms = Math.min(ms, performance.now() - t0);
  }
  if (f === undefined || ms >= READ_LIMIT_MS)
    fail(`read took ${ms.toFixed(1)} ms (limit ${READ_LIMIT_MS}) for a ${bytes.length}-byte file, ${READ_ATTEMPTS} times`);
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  for (const i of f.issues) {
    if (!FILE_CODES.has(i.code)) fail(`issue without a file code: ${JSON.stringify(i)}`);
    if (typeof i.message !== 'string' || i.message.length === 0) fail(`issue without a message: ${i.code}`);
    if (i.evidence?.['internal'] !== undefined) fail(`reader bug caught as an issue: ${i.message}`);
    stats.seen.add(i.code);
  }
  if (f.issues.length > 0) stats.withIssues++;
  if (f.tensors.length > 0 && f.issues.some((i) => i.fatal)) fail('a fatal issue must leave no tensor table');
  const outOfBounds = new Set(f.issues.filter((i) => i.code === 'F-FILE-002').map((i) => i.tensor));
  for (const t of f.tensors) {
    if (outOfBounds.has(t.name) || !canDequantize(t.dtype)) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (decode(src, t).length !== n) fail(`tensor '${t.name}' decoded to the wrong length`);
    stats.decodedTensors++;
  }
}

function fuzz(
  good: Uint8Array,
  fields: number[],
  readFile: (src: ByteSource) => ModelFile,
  decode: (src: ByteSource, t: TensorEntry) => Float32Array,
  options: { seed: number; json?: boolean; reseal?: boolean },
): Stats {
  const stats: Stats = { withIssues: 0, seen: new Set(), decodedTensors: 0, slowestMs: 0 };
  checkOne(good, readFile, decode, stats);
  if (stats.withIssues !== 0) fail('the seed file must read cleanly');
  const arb = mutatedSeed(good, fields, { json: options.json ?? false, sealable: options.reseal ?? false });
  fc.assert(
    fc.property(arb, (bytes) => {
      checkOne(bytes, readFile, decode, stats);
    }),
    { numRuns: RUNS, seed: options.seed },
  );
  return stats;
}

describe(`fuzz: ${RUNS.toLocaleString('en')} mutated or truncated files per format`, () => {
  it('GGUF (readGguf)', () => {
    const s = fuzz(ggufGood, ggufFields(), readGguf, readTensorF32, { seed: 20261201 });
    expect(s.withIssues).toBeGreaterThan(RUNS / 2);
    expect([...s.seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003']);
    expect(s.decodedTensors).toBeGreaterThan(RUNS / 2);
  });

  it('APR v2 (readApr), half of the mutants re-sealed so they get past the CRCs', () => {
    const s = fuzz(aprGood, aprFields(), (src) => readApr(src), readAprTensorF32, { seed: 20261202, reseal: true });
    expect(s.withIssues).toBeGreaterThan(RUNS * 0.8); // the rest: re-sealed edits of padding, or no-op edits
    expect([...s.seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003', 'F-FILE-004']);
    expect(s.decodedTensors).toBeGreaterThan(RUNS / 2);
  });

  it('safetensors (readSafetensors), including spliced JSON numbers', () => {
    const s = fuzz(stGood, [0], readSafetensors, readSafetensorsTensorF32, { seed: 20261203, json: true });
    expect(s.withIssues).toBeGreaterThan(RUNS / 2);
    expect([...s.seen].sort()).toEqual(['F-FILE-001', 'F-FILE-002', 'F-FILE-003']);
    expect(s.decodedTensors).toBeGreaterThan(RUNS / 2);
  });

  it('readModelFile on any of them, or random bytes, never throws', () => {
    const seeds = [ggufGood, aprGood, stGood];
    fc.assert(
      fc.property(fc.nat(2), fc.array(mutations(64, 1, false), { maxLength: 3 }), fc.uint8Array({ maxLength: 64 }), (which, ms, junk) => {
        const f = readModelFile(new BufferByteSource(ms.reduce((b, m) => apply(b, m, [0]), seeds[which] as Uint8Array)));
        for (const i of f.issues) if (!FILE_CODES.has(i.code)) fail(i.code);
        const g = readModelFile(new BufferByteSource(junk));
        if (g.format === 'unknown' && g.issues[0]?.code !== 'F-FILE-001') fail('unknown format without F-FILE-001');
      }),
      { numRuns: 1000, seed: 20261204 },
    );
  });
});

describe('huge declared counts and sizes are rejected fast, without big allocations', () => {
  /** Read once, returning the file, the time taken and how much the heap + array buffers grew. */
  function measure<T>(read: () => T): { f: T; ms: number; grewBytes: number } {
    const before = process.memoryUsage();
    const t0 = performance.now();
    const f = read();
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    return { f, ms, grewBytes: after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers) };
  }
  const SMALL = 16 * 2 ** 20;

  it('a GGUF declaring 2^60 tensors', () => {
    const { f, ms, grewBytes } = measure(() => readGguf(new BufferByteSource(u64At(ggufGood, 8, 2n ** 60n))));
    expect(f.issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/implausible header: tensor_count 1152921504606846976/) },
    ]);
    expect(ms).toBeLessThan(READ_LIMIT_MS);
    expect(grewBytes).toBeLessThan(SMALL);
  });

  it('a 2^62-element tensor in GGUF, APR and safetensors', () => {
    const d = 2 ** 31;
    const gguf = measure(() =>
      readGguf(
        new BufferByteSource(encodeGguf({ kvs: [], tensors: [{ name: 'x', shape: [d, d], dtype: 'F32', data: new Uint8Array(4) }] })),
      ),
    );
    expect(gguf.f.issues).toMatchObject([
      { code: 'F-FILE-002', tensor: 'x', message: expect.stringMatching(/runs past the end of the file/) },
    ]);
    expect(gguf.f.tensors).toEqual([]);
    const apr = measure(() =>
      readApr(new BufferByteSource(encodeApr({ tensors: [{ name: 'x', shape: [d, d], dtype: 'F32', data: new Uint8Array(4) }] }))),
    );
    expect(apr.f.issues).toMatchObject([
      { code: 'F-FILE-001', tensor: 'x', message: expect.stringMatching(/4611686018427387904 elements, more than 2\^53/) },
    ]);
    const st = measure(() =>
      readSafetensors(new BufferByteSource(encodeSafetensors([{ name: 'x', shape: [d, d], dtype: 'F32', data: new Uint8Array(4) }]))),
    );
    // 2^62 F32 elements are 2^64 bytes: usize overflow in the reference's own check
    expect(st.f.issues).toMatchObject([
      { code: 'F-FILE-001', tensor: 'x', message: expect.stringMatching(/overflows usize \(ValidationOverflow\)/) },
    ]);
    for (const r of [gguf, apr, st]) {
      expect(r.ms).toBeLessThan(READ_LIMIT_MS);
      expect(r.grewBytes).toBeLessThan(SMALL);
    }
  });

  it('an APR with tensor_count 2^32 − 1 (CRCs valid)', () => {
    const bytes = aprGood.slice();
    new DataView(bytes.buffer).setUint32(8, 2 ** 32 - 1, true);
    const { f, ms, grewBytes } = measure(() => readApr(new BufferByteSource(reseal(bytes))));
    expect(f.issues).toMatchObject([
      { code: 'F-FILE-001', fatal: true, message: expect.stringMatching(/implausible tensor_count 4294967295/) },
    ]);
    expect(ms).toBeLessThan(READ_LIMIT_MS);
    expect(grewBytes).toBeLessThan(SMALL);
  });

  it('a safetensors header length of 2^63', () => {
    const { f, ms, grewBytes } = measure(() => readSafetensors(new BufferByteSource(u64At(stGood, 0, 2n ** 63n))));
    expect(f.issues).toMatchObject([
      {
        code: 'F-FILE-001',
        fatal: true,
        message: 'header length 9223372036854775808 exceeds the limit of 100000000 bytes (HeaderTooLarge)',
      },
    ]);
    expect(ms).toBeLessThan(READ_LIMIT_MS);
    expect(grewBytes).toBeLessThan(SMALL);
  });
});
