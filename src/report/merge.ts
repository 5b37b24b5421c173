/**
 * Sharding and merging: `tmgt check --shard i/n` runs a deterministic, balanced slice of the cells, and
 * `tmgt report merge` folds the shards' reports back into the report one unsharded run gives.
 *
 * The unsharded order is defined, not inherited from whichever loop built the matrix: cells sorted by
 * converter, then model, then the target's index in the canonical target list, then engine. The matrix
 * runner sorts its own report the same way (`sortCells`), so a merged report and an unsharded one are
 * equal field for field, timings aside.
 */
import type { CellResult, ParityReport, ReportSummary } from '../contracts/results.js';
import { TARGET_IDS } from '../contracts/targets.js';
import { HarnessError, UsageError } from '../errors.js';

/**
 * The canonical target order: the order of the target table (contracts/targets.ts). A target not listed
 * sorts after every listed one, by name, so an unknown target never breaks a merge.
 */
export const CANONICAL_TARGET_ORDER: readonly string[] = TARGET_IDS;

/** Byte-wise string order: the same on every machine and locale (localeCompare is not). */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The fields that place a cell in the canonical order. */
export interface CellKey {
  converter: string;
  model: string;
  target: string;
  engine?: string;
}

/** Compare two cells in the canonical (unsharded) order. */
export function compareCells(a: CellKey, b: CellKey, targetOrder: readonly string[] = CANONICAL_TARGET_ORDER): number {
  const rank = (t: string): number => {
    const i = targetOrder.indexOf(t);
    return i < 0 ? targetOrder.length : i;
  };
  return (
    cmp(a.converter, b.converter) ||
    cmp(a.model, b.model) ||
    rank(a.target) - rank(b.target) ||
    cmp(a.target, b.target) ||
    cmp(a.engine ?? '', b.engine ?? '')
  );
}

/** A copy of `cells` in the canonical order. */
export function sortCells<T extends CellKey>(cells: readonly T[], targetOrder?: readonly string[]): T[] {
  return [...cells].sort((a, b) => compareCells(a, b, targetOrder));
}

/**
 * A rough relative cost of a cell, for balancing shards: proportional to the model's size class and the
 * work its target adds. Shape-faithful models (anything not `*-tiny`) cost ~100× a tiny one (their
 * tensors are ~100–1000× larger; oracle records are cached, conversion and the engine are not), and
 * quantized targets add the codec's work on top of f32/f16 copies. Only the ratios matter.
 */
export function estimateCellCost(cell: { model: string; target: string }): number {
  const modelCost = cell.model.includes('-tiny') ? 1 : 100; // the tiny zoo and its derived members (-tiny-heavy, -tiny-llama2)
  const type = cell.target.split('/')[1] ?? '';
  const targetCost = type.includes('_k') ? 1.6 : /^(q|int)/.test(type) ? 1.3 : 1;
  return modelCost * targetCost;
}

/**
 * Shard `i` of `n` (1-based, as in `--shard 2/3`) of `cells`: deterministic for the same input, every cell
 * in exactly one shard, and balanced by cost (largest first onto the least-loaded shard, ties to the lower
 * shard index and the earlier cell: the LPT rule, within 4/3 of the optimal makespan). The cells of the
 * shard come back in their input order.
 */
export function shardCells<T>(cells: readonly T[], i: number, n: number, cost: (cell: T) => number = () => 1): T[] {
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--shard: the shard count must be an integer ≥ 1, got ${n}`);
  if (!Number.isInteger(i) || i < 1 || i > n) throw new UsageError(`--shard: the shard index must be an integer in 1..${n}, got ${i}`);
  const costs = cells.map((c, k) => {
    const x = cost(c);
    if (!Number.isFinite(x) || x < 0) throw new UsageError(`--shard: cell ${k} has cost ${x}; a cost must be a finite number ≥ 0`);
    return x;
  });
  const order = costs.map((_, k) => k).sort((a, b) => (costs[b] as number) - (costs[a] as number) || a - b); // k < costs.length
  const load = new Array<number>(n).fill(0);
  const owner = new Array<number>(cells.length).fill(0);
  for (const k of order) {
    let best = 0;
    for (let s = 1; s < n; s++) if ((load[s] as number) < (load[best] as number)) best = s; // s, best < n
    owner[k] = best;
    load[best] = (load[best] as number) + (costs[k] as number); // best < n, k < costs.length
  }
  return cells.filter((_, k) => owner[k] === i - 1);
}

/** Parse `--shard i/n`. */
export function parseShard(spec: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (!m) throw new UsageError(`--shard: expected i/n (e.g. 2/3), got '${spec}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index < 1 || index > count) throw new UsageError(`--shard: expected 1 ≤ i ≤ n, got '${spec}'`);
  return { index, count };
}

/** A report's summary and per-converter counts, from its cells (warn counts as passing, never as failing). */
export function summarizeCells(cells: readonly CellResult[]): { summary: ReportSummary; converters: Record<string, ReportSummary> } {
  const empty = (): ReportSummary => ({ checks: 0, passed: 0, warned: 0, failed: 0 });
  const summary = empty();
  const converters: Record<string, ReportSummary> = {};
  for (const cell of cells) {
    const per = (converters[cell.converter] ??= empty());
    for (const check of cell.checks) {
      for (const s of [summary, per]) {
        s.checks++;
        if (check.status === 'fail') s.failed++;
        else {
          s.passed++;
          if (check.status === 'warn') s.warned++;
        }
      }
    }
  }
  return { summary, converters };
}

/** Shard reports disagree on something only one run could have produced (tool version, a cell run twice). */
export class MergeError extends HarnessError {
  override readonly name = 'MergeError';
  constructor(message: string) {
    super('E-MERGE', message);
  }
}

type MutantRow = NonNullable<ParityReport['mutants']>[number];

function mutantKey(m: MutantRow): string {
  return JSON.stringify([m.mutant, m.model, m.target]);
}

/**
 * Merge shard reports into the report of one unsharded run: the cells of all shards in the canonical order,
 * the summary recomputed from them, the mutant kill matrices merged (sorted by mutant, model, target).
 * Throws MergeError when the shards come from different tool versions or two shards ran the same cell.
 */
export function mergeReports(reports: readonly ParityReport[], opts: { targetOrder?: readonly string[] } = {}): ParityReport {
  const first = reports[0];
  if (!first) throw new MergeError('nothing to merge: no reports given');
  const seen = new Set<string>();
  const cells: CellResult[] = [];
  const mutants = new Map<string, MutantRow>();
  let hasMutants = false;
  let incomplete = false;
  for (const [k, r] of reports.entries()) {
    if (r.schemaVersion !== 2) throw new MergeError(`report ${k + 1} has schemaVersion ${String(r.schemaVersion)}, expected 2`);
    if (r.tool.version !== first.tool.version) {
      throw new MergeError(`report ${k + 1} was written by ${r.tool.name} ${r.tool.version}, report 1 by ${first.tool.version}`);
    }
    if (r.incomplete) incomplete = true;
    for (const c of r.cells) {
      const key = JSON.stringify([c.converter, c.model, c.target, c.engine]);
      if (seen.has(key))
        throw new MergeError(`cell ${c.converter} × ${c.model} × ${c.target} (${c.engine}) appears in more than one report`);
      seen.add(key);
      cells.push(c);
    }
    if (r.mutants) {
      hasMutants = true;
      for (const m of r.mutants) {
        const mk = mutantKey(m);
        const prev = mutants.get(mk);
        if (prev && JSON.stringify(prev) !== JSON.stringify(m)) throw new MergeError(`mutant cell ${mk} differs between reports`);
        mutants.set(mk, m);
      }
    }
  }
  const sorted = sortCells(cells, opts.targetOrder);
  const { summary, converters } = summarizeCells(sorted);
  const merged: ParityReport = { schemaVersion: 2, tool: first.tool, summary, converters, cells: sorted };
  if (incomplete) merged.incomplete = true;
  if (hasMutants) {
    merged.mutants = [...mutants.values()].sort(
      (a, b) =>
        cmp(a.mutant, b.mutant) ||
        cmp(a.model, b.model) ||
        compareCells({ converter: '', model: '', target: a.target }, { converter: '', model: '', target: b.target }, opts.targetOrder),
    );
  }
  return merged;
}
