/**
 * Replays the committed fuzz corpus (test/fuzz-corpus/, written by `make fuzz`): every input that once
 * found a new code, a rare check, the slowest read, the largest allocation, a crash or a hang. Each must
 * keep the readers' contract (fuzz/contract.ts), read within a time bound without growing the heap much,
 * and — unless it was recorded from a crash — return exactly the codes recorded for it. Then the driver's
 * own check: injected failures of each kind are seen, counted and kept.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readChecked } from '../../fuzz/contract.js';
import { readApr } from '../../src/formats/apr/reader.js';
import { readGguf } from '../../src/formats/gguf/reader.js';
import { encodeGguf } from '../../src/formats/gguf/writer.js';
import { encodeApr } from '../../src/formats/apr/writer.js';
import { readSafetensors } from '../../src/formats/safetensors/reader.js';
import { CORPUS_DIR, readManifest } from '../../fuzz/corpus.js';
import { BufferByteSource } from '../../src/formats/byte-source.js';

/** The slowest corpus input reads in a few ms; a repeated read over this is a reader slow path, not noise. */
const READ_LIMIT_MS = 250;
const READ_ATTEMPTS = 3;
/** Corpus files are ≤ ~100 KB; a read that keeps 64 MB more alive than before allocates by a declared count. */
const GROWTH_LIMIT_BYTES = 64 * 2 ** 20;

const manifest = Object.entries(readManifest());

describe('fuzz corpus replay', () => {
  it('has inputs for every target, including the reader regressions', () => {
    const targets = new Set(manifest.map(([, e]) => e.target));
    expect([...targets].sort()).toEqual(['apr', 'auto', 'gguf', 'safetensors']);
    expect(manifest.filter(([, e]) => e.role === 'regression').length).toBeGreaterThanOrEqual(2);
  });

  it.each(manifest)('%s', (key, entry) => {
    const bytes = new Uint8Array(readFileSync(join(CORPUS_DIR, key)));
    let ms = Infinity;
    let codes: string[] = [];
    for (let attempt = 0; attempt < READ_ATTEMPTS && ms >= READ_LIMIT_MS; attempt++) {
      const before = process.memoryUsage();
      const t0 = performance.now();
      const { file } = readChecked(entry.target, new BufferByteSource(bytes));
      ms = Math.min(ms, performance.now() - t0);
      const after = process.memoryUsage();
      expect(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers).toBeLessThan(GROWTH_LIMIT_BYTES);
      codes = [...new Set(file.issues.map((i) => i.code))].sort();
    }
    expect(ms, `read took ${ms.toFixed(1)} ms`).toBeLessThan(READ_LIMIT_MS);
    if (entry.codes !== null) expect(codes).toEqual(entry.codes);
  });
});

describe("JSON nested to serde_json's recursion limit (the reader fix the fuzzer found)", () => {
  /** A safetensors file whose header is one value nested `depth` deep. */
  function deepSafetensors(depth: number): Uint8Array {
    const header = Buffer.from(`{"x":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    const bytes = new Uint8Array(8 + header.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    return bytes;
  }

  it('127 levels still parse; 128 are refused as serde_json refuses them', () => {
    expect(
      readSafetensors(new BufferByteSource(deepSafetensors(126)))
        .issues.map((i) => i.message)
        .join(),
    ).not.toMatch(/recursion limit/);
    expect(readSafetensors(new BufferByteSource(deepSafetensors(127))).issues).toMatchObject([
      {
        code: 'F-FILE-001',
        fatal: true,
        message: 'header is not valid JSON (InvalidHeaderDeserialization): recursion limit exceeded (128 levels of nesting)',
      },
    ]);
    const apr = encodeApr({ metadata: `{"deep":${'['.repeat(200)}${']'.repeat(200)}}`, tensors: [] });
    expect(readApr(new BufferByteSource(apr)).issues).toMatchObject([
      { code: 'F-FILE-001', fatal: false, message: 'metadata is not valid UTF-8 JSON: recursion limit exceeded (128 levels of nesting)' },
    ]);
  });

  it('a 20 MB header of nested arrays is refused in linear time without building it', () => {
    // Before the fix JSON.parse built 10 million arrays from this (~1 GB of heap, tens of seconds), then
    // JSON.stringify overflowed the stack; a 98 MB header took 176 s and 4.9 GB of RSS.
    const bytes = deepSafetensors(10_000_000);
    const before = process.memoryUsage();
    const t0 = performance.now();
    const f = readSafetensors(new BufferByteSource(bytes));
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    expect(f.issues[0]?.message).toMatch(/recursion limit exceeded/);
    expect(ms).toBeLessThan(5_000);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(200 * 2 ** 20);
  });
});

describe('a GGUF with many tensors reads in linear time (the other reader fix)', () => {
  /** A valid GGUF of `n` one-element F32 tensors (38 bytes of tensor info + 32 of data each). */
  const many = (n: number): Uint8Array =>
    encodeGguf({
      kvs: [],
      tensors: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, shape: [1], dtype: 'F32' as const, data: new Uint8Array(4) })),
    });

  it('200,000 tensors (13 MB) read in seconds, not minutes (spanBytes found by binary search)', () => {
    // Before the fix each tensor's span was a linear find over all tensor starts, O(N²): on the shared 2-core VM
    // 160,000 tensors took 15 s and 200,000 over 25 s; after it, 1.6 s and ~2–3 s. The bound sits between.
    const bytes = many(200_000);
    const t0 = performance.now();
    const f = readGguf(new BufferByteSource(bytes));
    const ms = performance.now() - t0;
    expect(f.issues).toEqual([]);
    expect(f.tensors).toHaveLength(200_000);
    expect(ms).toBeLessThan(12_000);
  }, 120_000);
});

describe('per-tensor issues are capped per file (the third reader fix)', () => {
  it('20,000 duplicate, misplaced tensor infos keep 1000 issues and one summary per code, not 40,000', () => {
    // 24 bytes per tensor info (empty name, no dims, F32, offset 0): before, each raised two issues (~400 bytes of heap).
    const n = 20_000;
    const bytes = new Uint8Array(24 + n * 24 + 64);
    const dv = new DataView(bytes.buffer);
    dv.setUint32(0, 0x46554747, true);
    dv.setUint32(4, 3, true);
    dv.setBigUint64(8, BigInt(n), true);
    const f = readGguf(new BufferByteSource(bytes));
    expect(f.issues.length).toBeLessThanOrEqual(1000 + 4);
    const summaries = f.issues.filter((i) => /more F-FILE-00\d issue\(s\) on tensors not listed/.test(i.message));
    expect(summaries.map((i) => i.code).sort()).toEqual(['F-FILE-001', 'F-FILE-003']);
    const dropped = summaries.reduce((a, i) => a + Number(i.evidence?.['dropped']), 0);
    expect(f.issues.length - summaries.length + dropped).toBe(2 * (n - 1));
  });
});

describe('the fuzz driver sees what it is there to see', () => {
  it('an injected exception, hang and runaway allocation are each counted, kept in the corpus, and fail the run', async () => {
    const corpus = mkdtempSync(join(tmpdir(), 'tmgt-fuzz-driver-'));
    const env = {
      ...process.env,
      FUZZ_INPUTS: '700',
      FUZZ_TARGETS: 'gguf',
      FUZZ_CORPUS_DIR: corpus,
      FUZZ_INJECT: 'throw@50,hang@250,alloc@600',
      // Memory on a loaded VM fills at ~100 MB/s: an RSS cap one 128 MB step above the child's ~95 MB, and a
      // hang bound long enough that the runaway allocation meets the cap before the clock.
      FUZZ_RSS_MB: '200',
      FUZZ_HANG_MS: '8000',
    };
    const main = new URL('../../fuzz/main.ts', import.meta.url).pathname;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
      const child = execFile(process.execPath, ['--import', 'tsx', main], { env }, (_err, out, err) =>
        res({ code: child.exitCode, stdout: out, stderr: err }),
      );
    });
    expect(stdout.trim().split('\n'), stderr).toEqual([
      expect.stringMatching(/^fuzz gguf: inputs=700 crashes=2 hangs=1 peak_rss_mb=\d+ codes=3$/),
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/input 50: Error: injected failure at input 50/);
    expect(stderr).toMatch(/input 250: read still running after \d+ ms/);
    expect(stderr).toMatch(/input 600: RSS \d+ MB over the 200 MB cap/);
    const roles = Object.values(readManifest(corpus)).map((e) => e.role);
    expect(roles.filter((r) => r === 'crash')).toHaveLength(2);
    expect(roles.filter((r) => r === 'hang')).toHaveLength(1);
  }, 120_000);
});
