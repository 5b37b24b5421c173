import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ParityReport } from '../../src/contracts/results.js';
import { estimateCellCost, mergeReports, MergeError, parseShard, shardCells, summarizeCells } from '../../src/report/merge.js';
import { validateReport } from '../../src/report/schema.js';
import { UsageError } from '../../src/errors.js';

const report = (): ParityReport => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'report.json'), 'utf8')) as ParityReport;

/** A shard's own report, as `tmgt check --shard i/n` writes it. */
function shardReport(r: ParityReport, i: number, n: number): ParityReport {
  const cells = shardCells(r.cells, i, n, estimateCellCost);
  const out: ParityReport = { ...r, ...summarizeCells(cells), cells };
  // `tmgt mutants` shards too: shard 1 ran the first two mutant cells, shard 3 the rest, shard 2 none.
  delete out.mutants;
  if (r.mutants && i === 1) out.mutants = r.mutants.slice(0, 2);
  if (r.mutants && i === 3) out.mutants = r.mutants.slice(2);
  return out;
}

const withoutTimings = (r: ParityReport): unknown => ({ ...r, cells: r.cells.map((c) => ({ ...c, durationMs: 0, timingsMs: undefined })) });

describe('shard and merge', () => {
  it('shards 1/3, 2/3, 3/3 of a real report merge back into the report (timings aside)', () => {
    const r = report();
    expect(r.cells.length).toBeGreaterThanOrEqual(6);
    const shards = [1, 2, 3].map((i) => shardReport(r, i, 3));
    for (const s of shards) {
      expect(s.cells.length).toBeGreaterThan(0);
      expect(validateReport(s)).toEqual([]);
    }
    // Shard reports arrive in any order and their cells in any order: the merge restores the canonical order.
    const merged = mergeReports([
      shards[2] as ParityReport,
      { ...(shards[0] as ParityReport), cells: [...(shards[0] as ParityReport).cells].reverse() },
      shards[1] as ParityReport,
    ]);
    expect(validateReport(merged)).toEqual([]);
    expect(withoutTimings(merged)).toEqual(withoutTimings(r));
    expect(merged.summary).toEqual(r.summary);
  });

  it('every cell lands in exactly one shard, deterministically, and shards are balanced by cost', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (costs, n) => {
        const cells = costs.map((cost, id) => ({ id, cost }));
        const shards = Array.from({ length: n }, (_, i) => shardCells(cells, i + 1, n, (c) => c.cost));
        expect(
          shards
            .flat()
            .map((c) => c.id)
            .sort((a, b) => a - b),
        ).toEqual(cells.map((c) => c.id));
        expect(Array.from({ length: n }, (_, i) => shardCells(cells, i + 1, n, (c) => c.cost))).toEqual(shards);
        for (const s of shards) expect(s.map((c) => c.id)).toEqual([...s.map((c) => c.id)].sort((a, b) => a - b));
        // LPT: no shard exceeds the ideal share by more than the largest single cost.
        const total = costs.reduce((a, b) => a + b, 0);
        const max = Math.max(0, ...costs);
        for (const s of shards) expect(s.reduce((a, c) => a + c.cost, 0)).toBeLessThanOrEqual(total / n + max);
      }),
    );
  });

  it('a shape-faithful model is not stacked on one shard with others', () => {
    const cells = ['smollm-135m', 'qwen2-0.5b', 'gpt2-124m']
      .flatMap((model) => ['gguf/q8_0', 'gguf/q4_0'].map((target) => ({ model, target })))
      .concat(['llama-tiny', 'qwen2-tiny'].map((model) => ({ model, target: 'gguf/f32' })));
    const loads = [1, 2, 3].map((i) => shardCells(cells, i, 3, estimateCellCost).reduce((a, c) => a + estimateCellCost(c), 0));
    expect(Math.max(...loads) / Math.min(...loads)).toBeLessThan(1.2);
  });

  it('rejects bad shard specs and inconsistent shard sets', () => {
    expect(() => shardCells([1, 2], 0, 2)).toThrow(UsageError);
    expect(() => shardCells([1, 2], 3, 2)).toThrow(/1\.\.2, got 3/);
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(() => parseShard('3/2')).toThrow(UsageError);
    expect(() => parseShard('a/b')).toThrow(/expected i\/n/);
    const r = report();
    expect(() => mergeReports([r, r])).toThrow(MergeError);
    expect(() => mergeReports([r, { ...r, cells: [], tool: { ...r.tool, version: '9.9.9' } }])).toThrow(/9\.9\.9/);
    expect(() => mergeReports([])).toThrow(MergeError);
  });
});
