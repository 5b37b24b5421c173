/**
 * Replays the committed fuzz corpus (test/fuzz-corpus/, written by `make fuzz`): every input that once
 * found a new code, a rare check, the slowest read, the largest allocation, a crash or a hang. Each must
 * keep the readers' contract (fuzz/contract.ts), read within a time bound without growing the heap much,
 * and — unless it was recorded from a crash — return exactly the codes recorded for it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readChecked } from '../../fuzz/contract.js';
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
