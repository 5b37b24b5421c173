/**
 * `make nightly`'s calibration: the shape-faithful models (or `--models`) × every target × {reference, llama.cpp}, plus
 * the seed mutants and one mutant of each bug class, every suite. Writes reports/calibration.md — per target and metric:
 * the reference converter's worst value, llama.cpp's worst value, the bound, and the worst (least broken) value of a
 * mutant that the metric's check kills — and reports/calibration.json. Exit 1 when the reference or llama.cpp fails a
 * check or a mutant survives.
 *
 *   npx tsx nightly/calibrate.ts [--models smollm-135m-shape,qwen2-0.5b-shape,gpt2-124m-shape] [--out reports]
 *                                [--from A/parity.json,B/parity.json] [--mutants mutant:a,mutant:b|none]
 *
 * --from: take the reference and llama.cpp cells from `tmgt check` reports already made (e.g. the nightly shards, or
 * `tmgt check --models smollm-135m-shape [--converter llama.cpp]`) instead of running them again; --mutants: which
 * mutants to run at shape scale (default: the seed mutants and one of each class).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TARGET_IDS, type TargetId } from '../src/contracts/targets.js';
import type { CellResult } from '../src/contracts/results.js';
import { TOLERANCES } from '../src/checks/tolerances.js';
import { DEFAULT_PROMPTS } from '../src/config.js';
import { MUTANTS, mutantArchs } from '../src/converters/mutants.js';
import { parseTarget } from '../src/converters/targets.js';
import { ALL_SUITES, runCell } from '../src/matrix/run.js';
import { textTable } from '../src/report/table.js';
import { findModelSpec } from '../src/zoo/specs.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    out: { type: 'string' },
    converters: { type: 'string' },
    from: { type: 'string' },
    mutants: { type: 'string' },
  },
  strict: true,
});
const models = (values.models ?? 'smollm-135m-shape,qwen2-0.5b-shape,gpt2-124m-shape').split(',');
const converters = (values.converters ?? 'reference,llama.cpp').split(',');
const out = resolve(values.out ?? 'reports');
mkdirSync(out, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), 'tmgt-nightly-'));
const opts = { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: 32, converterTimeoutMs: 1_800_000, suites: [...ALL_SUITES] };

/** Metrics the table shows: where each check keeps it, whether lower is better, and its bound for a target. */
const METRICS = {
  'weight SQNR dB (min)': { suite: 'fidelity', key: 'worstSqnrDb', lower: false, bound: (t: TargetId) => TOLERANCES[t].weightSqnrMinDb },
  NMSE: { suite: 'logits', key: 'nmse', lower: true, bound: (t: TargetId) => TOLERANCES[t].logitsNmseMax },
  'KL mean': { suite: 'logits', key: 'klMean', lower: true, bound: (t: TargetId) => TOLERANCES[t].klMeanMax },
  'KL p99': { suite: 'logits', key: 'klP99', lower: true, bound: (t: TargetId) => TOLERANCES[t].klP99Max },
  'same top-1': { suite: 'logits', key: 'sameTop1', lower: false, bound: (t: TargetId) => TOLERANCES[t].sameTop1Min },
  'PPL excess': { suite: 'perplexity', key: 'pplExcess', lower: true, bound: (t: TargetId) => TOLERANCES[t].pplExcessMax },
  'greedy mismatches': { suite: 'tokens', key: 'mismatches', lower: true, bound: (t: TargetId) => TOLERANCES[t].greedyMismatchMax },
  'cross-runtime KL': { suite: 'cross-runtime', key: 'klMean', lower: true, bound: () => NaN },
} as const;
type MetricName = keyof typeof METRICS;

function worst(cells: readonly CellResult[], name: MetricName): number | undefined {
  const m = METRICS[name];
  const vals = cells
    .flatMap((c) => c.checks.filter((k) => k.suite === m.suite && k.prompt !== 'drift ordering').map((k) => k.metrics?.[m.key]))
    .filter((v): v is number => typeof v === 'number' && !Number.isNaN(v));
  if (vals.length === 0) return undefined;
  return m.lower ? Math.max(...vals) : Math.min(...vals);
}

const results: { converter: string; cell: CellResult }[] = [];
const failures: string[] = [];
for (const path of values.from?.split(',') ?? []) {
  // a report tmgt check wrote (validated against reports/parity.schema.json when it was written)
  const report = JSON.parse(readFileSync(resolve(path), 'utf8')) as { cells: CellResult[] };
  for (const cell of report.cells.filter((c) => models.includes(c.model))) {
    results.push({ converter: cell.converter, cell });
    for (const c of cell.checks.filter((k) => k.status === 'fail'))
      failures.push(
        `${cell.converter} ${cell.model} ${cell.target} ${c.suite} ${c.prompt ?? ''}: ${c.verdicts.map((v) => v.code).join(', ')}`,
      );
  }
}
for (const converter of values.from === undefined ? converters : []) {
  for (const model of models) {
    for (const target of TARGET_IDS) {
      const t0 = Date.now();
      const cell = await runCell({ converter, model, target: parseTarget(target), engine: 'bundled' }, opts);
      results.push({ converter, cell });
      const failed = cell.checks.filter((c) => c.status === 'fail');
      for (const c of failed)
        failures.push(`${converter} ${model} ${target} ${c.suite} ${c.prompt ?? ''}: ${c.verdicts.map((v) => v.code).join(', ')}`);
      process.stderr.write(
        `${converter} × ${model} × ${target}: ${cell.status === 'skipped' ? `skipped (${cell.reason})` : `${cell.checks.length - failed.length}/${cell.checks.length}`} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
      );
    }
  }
}

// The seed mutants (A, B) and one mutant of each other bug class of bug-catalogue §3, at their own target, on every model
// of an architecture they apply to.
const AT_SHAPE_SCALE = [
  'mutant:lm-head-int8-as-f32',
  'mutant:lm-head-zeros',
  'mutant:norms-quantized',
  'mutant:gpt2-names-unmapped',
  'mutant:embedding-length-missing',
  'mutant:rms-eps-swapped',
  'mutant:qk-permute-skipped',
  'mutant:qwen2-declared-llama',
  'mutant:ffn-down-untransposed',
  'mutant:qkv-order-swapped',
  'mutant:qkv-bias-dropped',
  'mutant:lm-head-random',
  'mutant:duplicate-tokens',
  'mutant:f16-overflow-norm',
  'mutant:bf16-truncated',
  'mutant:q8-scale-bf16',
  'mutant:alignment-mismatch',
  'mutant:byteswapped',
  'mutant:quantize-no-op',
  'mutant:qk-permuted-twice',
  'mutant:drop-last-layer',
];
const chosen = values.mutants === undefined ? AT_SHAPE_SCALE : values.mutants === 'none' ? [] : values.mutants.split(',');
const mutants = MUTANTS.filter((m) => chosen.includes(m.id));
const kills: { mutant: string; model: string; target: TargetId; killed: boolean; cell: CellResult }[] = [];
for (const m of mutants) {
  for (const model of models.filter((x) => mutantArchs(m).includes(findModelSpec(x).arch))) {
    const cell = await runCell({ converter: m.id, model, target: parseTarget(m.target), engine: 'bundled' }, opts);
    const got = new Set(cell.checks.flatMap((c) => c.verdicts.filter((v) => v.status === 'fail').map((v) => v.code)));
    const killed = m.expected.every((c) => got.has(c));
    kills.push({ mutant: m.id, model, target: m.target, killed, cell });
    if (!killed) failures.push(`${m.id} × ${model} survived (got ${[...got].join(', ') || 'nothing'})`);
    process.stderr.write(`${m.id} × ${model} @ ${m.target}: ${killed ? 'killed' : 'SURVIVED'}\n`);
  }
}

const fmt = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v)
    ? '–'
    : !Number.isFinite(v)
      ? v > 0
        ? '∞'
        : '−∞'
      : Math.abs(v) >= 0.01 && Math.abs(v) < 1000
        ? v.toFixed(3)
        : v.toExponential(2);
const rows: string[][] = [];
for (const target of TARGET_IDS) {
  for (const name of Object.keys(METRICS) as MetricName[]) {
    const of = (conv: string) =>
      worst(
        results.filter((r) => r.converter === conv && r.cell.target === target).map((r) => r.cell),
        name,
      );
    const mutantCells = kills
      .filter((k) => k.target === target && k.cell.checks.some((c) => c.suite === METRICS[name].suite && c.status === 'fail'))
      .map((k) => k.cell);
    const ref = of('reference');
    const cpp = of('llama.cpp');
    const mut = mutantCells.length ? worst(mutantCells, name) : undefined;
    if (ref === undefined && cpp === undefined && mut === undefined) continue;
    rows.push([target, name, fmt(ref), fmt(cpp), fmt(METRICS[name].bound(target)), fmt(mut)]);
  }
}
const table = textTable(['target', 'metric', 'reference', 'llama.cpp', 'bound', 'mutant (least broken)'], rows);
const md = [
  `# Calibration: ${models.join(', ')}`,
  '',
  `Reference and llama.cpp columns: the worst value over models and prompts (max for lower-is-better metrics, min for SQNR and`,
  `same top-1). Bound: the absolute bound of src/checks/tolerances.ts (hard on the calibrated tiny zoo; elsewhere exceeding it`,
  `is a warning when the reference loses as much, see src/checks/bounds.ts). Mutant: the least broken value among mutant cells`,
  `whose check of that metric failed.`,
  '',
  '| ' + ['target', 'metric', 'reference', 'llama.cpp', 'bound', 'mutant (least broken)'].join(' | ') + ' |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
  `Mutants: ${kills.filter((k) => k.killed).length}/${kills.length} cells killed. Failures: ${failures.length === 0 ? 'none' : ''}`,
  ...failures.map((f) => `- ${f}`),
  '',
].join('\n');
writeFileSync(join(out, 'calibration.md'), md);
writeFileSync(
  join(out, 'calibration.json'),
  JSON.stringify({ models, rows, kills: kills.map(({ cell: _cell, ...k }) => k), failures }, null, 1),
);
for (const line of table) process.stdout.write(line + '\n');
process.stdout.write(`wrote ${join(out, 'calibration.md')}; ${failures.length} failure(s)\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
