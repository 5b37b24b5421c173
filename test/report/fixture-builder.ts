/**
 * Builds schemaVersion-2 reports from real `tmgt check` output (today schemaVersion 1: no cell `status`,
 * no tensor table, no per-prompt detail) so the report renderers can be tested on what the harness really
 * emits. Everything added comes from the run itself: the tensor table from reading the artifact back
 * (`tmgt inspect --json`), per-prompt detail from the verdict evidence, the SQNR bound from the target's
 * tolerance. A v2 report passes through unchanged.
 */
import type { CellResult, CheckResult, ParityReport, PromptDetail, ReportSummary, TensorRow } from '../../src/contracts/results.js';
import type { Verdict } from '../../src/contracts/verdicts.js';
import { hfToGguf, isGgufStyleName, type MappedArch } from '../../src/formats/name-map.js';
import { summarizeCells } from '../../src/report/merge.js';

/** A v1 report as `tmgt check` writes it today. */
export interface V1Report {
  schemaVersion: 1;
  tool: { name: 'tiny-model-ground-truth'; version: string };
  cells: {
    converter: string;
    model: string;
    target: string;
    engine: string;
    durationMs: number;
    artifact?: string;
    skipped?: string;
    checks: (Omit<CheckResult, 'detail'> & { detail?: PromptDetail })[];
  }[];
}

/** One tensor as `tmgt inspect --json` prints it. */
export interface InspectedTensor {
  name: string;
  shape: number[];
  dtype: string;
  bytes: number;
  stats?: { zeroFraction: number } | null;
}

export interface UpgradeOptions {
  /** The tensor table of each artifact (by artifact path), read back from the file. */
  tensorsByArtifact?: Map<string, InspectedTensor[]>;
  /** The SQNR bound per target (dB), from the target's tolerance. */
  sqnrBoundDb?: (target: string) => number | undefined;
  /** A cell whose converter refused the model's architecture is reported as skipped (not applicable here). */
  skipInapplicable?: boolean;
  mutants?: ParityReport['mutants'];
}

function archOf(model: string): MappedArch | undefined {
  if (model.startsWith('llama') || model.startsWith('smollm')) return 'llama';
  if (model.startsWith('qwen2')) return 'qwen2';
  if (model.startsWith('gpt2')) return 'gpt2';
  return undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Per-prompt detail recoverable from the verdict evidence a v1 check already carries. */
function detailOf(check: V1Report['cells'][number]['checks'][number]): PromptDetail | undefined {
  const detail: PromptDetail = {};
  for (const v of check.verdicts) {
    const ev = v.evidence;
    const fdl = ev['firstDivergingLayer'];
    if (typeof fdl === 'object' && fdl !== null && 'name' in fdl) {
      const name = str((fdl as { name: unknown }).name); // narrowed by the `in` check above
      if (name !== undefined) detail.firstDivergingLayer = name;
    }
    const expected = str(ev['expectedText']);
    const got = str(ev['gotText']);
    if (expected !== undefined && got !== undefined) {
      detail.oracleText = expected;
      detail.candidateText = got;
    }
    const kl = ev['klPerPosition'];
    if (Array.isArray(kl) && kl.every((x) => typeof x === 'number')) detail.klPerPosition = kl as number[]; // every() checked the items
  }
  return Object.keys(detail).length > 0 ? detail : undefined;
}

function tensorRows(cell: V1Report['cells'][number], inspected: InspectedTensor[], bound: number | undefined): TensorRow[] {
  const arch = archOf(cell.model);
  const sqnr = new Map<string, number>();
  const codes = new Map<string, Set<string>>();
  const verdicts: Verdict[] = cell.checks.flatMap((c) => c.verdicts);
  for (const check of cell.checks) {
    for (const [k, v] of Object.entries(check.metrics ?? {})) if (k.startsWith('sqnrDb.')) sqnr.set(k.slice('sqnrDb.'.length), v);
  }
  for (const v of verdicts) {
    if (v.tensor === undefined) continue;
    const set = codes.get(v.tensor) ?? new Set<string>();
    set.add(v.code);
    codes.set(v.tensor, set);
    const s = num(v.evidence['sqnrDb']);
    if (s !== undefined && v.code === 'F-FIDELITY-001') sqnr.set(v.tensor, s);
  }
  return inspected.map((t) => {
    const role = isGgufStyleName(t.name) ? t.name : arch !== undefined ? hfToGguf(arch, t.name)?.name : undefined;
    const row: TensorRow = { name: t.name, shape: t.shape, dtype: t.dtype, bytes: t.bytes, codes: [...(codes.get(t.name) ?? [])].sort() };
    if (role !== undefined) row.role = role;
    const s = sqnr.get(t.name);
    if (s !== undefined) {
      row.sqnrDb = s;
      if (bound !== undefined && Number.isFinite(bound)) row.sqnrBoundDb = bound;
    }
    if (t.stats) row.zeroFraction = t.stats.zeroFraction;
    return row;
  });
}

/** Upgrade a v1 report (or pass a v2 one through). */
export function upgradeReport(input: V1Report | ParityReport, opts: UpgradeOptions = {}): ParityReport {
  if (input.schemaVersion === 2) return input;
  const cells: CellResult[] = input.cells.map((c) => {
    const base = { converter: c.converter, model: c.model, target: c.target, engine: c.engine, durationMs: c.durationMs };
    if (c.skipped !== undefined) return { ...base, status: 'skipped', reason: c.skipped, checks: [] };
    const checks: CheckResult[] = c.checks.map((ch) => {
      const out: CheckResult = { suite: ch.suite, status: ch.status, verdicts: ch.verdicts };
      if (ch.prompt !== undefined) out.prompt = ch.prompt;
      if (ch.metrics !== undefined) out.metrics = ch.metrics;
      const detail = ch.detail ?? detailOf(ch);
      if (detail !== undefined) out.detail = detail;
      return out;
    });
    const done: CellResult = { ...base, status: 'done', checks };
    if (c.artifact !== undefined) done.artifact = c.artifact;
    const inspected = c.artifact !== undefined ? opts.tensorsByArtifact?.get(c.artifact) : undefined;
    if (inspected) done.tensors = tensorRows(c, inspected, opts.sqnrBoundDb?.(c.target));
    return done;
  });
  const kept = opts.skipInapplicable ? skipInapplicable(cells) : cells;
  const { summary, converters } = summarizeCells(kept);
  const report: ParityReport = {
    schemaVersion: 2,
    tool: input.tool,
    summary,
    converters,
    cells: kept,
  };
  if (opts.mutants) report.mutants = opts.mutants;
  return report;
}

/**
 * A cell whose converter refused the model's architecture (a mutant written for llama run on gpt2) becomes
 * skipped: the bug it injects does not exist there, so its checks are not failures of anything.
 */
export function skipInapplicable(cells: CellResult[]): CellResult[] {
  return cells.map((c) => {
    const first = c.checks[0]?.verdicts[0];
    const m =
      first?.code === 'F-RUNTIME-001' ? /applies to ([a-z0-9, ]+), not ([a-z0-9]+)/.exec(str(first.evidence['logTail']) ?? '') : null;
    if (!m) return c;
    const { converter, model, target, engine, durationMs } = c;
    return {
      converter,
      model,
      target,
      engine,
      durationMs,
      status: 'skipped',
      reason: `${converter} applies to ${m[1]}, not ${m[2]}`,
      checks: [],
    };
  });
}

/** Rename a converter everywhere in a report (a "previous night" built from another converter's real run). */
export function relabelConverter(report: ParityReport, from: string, to: string): ParityReport {
  const cells = report.cells.map((c) => (c.converter === from ? { ...c, converter: to } : c));
  const { summary, converters } = summarizeCells(cells);
  return { ...report, summary, converters, cells };
}

export type { ReportSummary };
