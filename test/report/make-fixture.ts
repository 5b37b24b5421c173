/**
 * Regenerates test/report/fixtures/{report,previous}.json from real runs: `tmgt check` over a small matrix
 * (two mutants and the reference converter), `tmgt inspect --json` on every artifact for the tensor table,
 * `tmgt mutants --json` for the kill matrix. Run with `npx tsx test/report/make-fixture.ts` (~2 min warm).
 *
 * previous.json is "the night before the regression": the reference converter's real results for the
 * cells mutant:qk-permute-skipped covers, relabelled to that converter, so the trend shows what a broken
 * Q/K permutation turns from passing to failing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ParityReport } from '../../src/contracts/results.js';
import { TOLERANCES } from '../../src/checks/tolerances.js';
import { TARGET_IDS, type TargetId } from '../../src/contracts/targets.js';
import { mergeReports } from '../../src/report/merge.js';
import { relabelConverter, upgradeReport, type InspectedTensor, type V1Report } from './fixture-builder.js';

const ROOT = join(import.meta.dirname, '..', '..');
const OUT = join(import.meta.dirname, 'fixtures');

function tmgt(args: string[]): string {
  try {
    return execFileSync('node', [join(ROOT, 'bin', 'tmgt.js'), ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28 });
  } catch (e) {
    // exit 1 = a check failed: expected for mutants; the report is still written.
    const err = e as { status?: number; stdout?: string }; // execFileSync's error carries the child's status and output
    if (err.status === 1) return err.stdout ?? '';
    throw e;
  }
}

const isTarget = (t: string): t is TargetId => (TARGET_IDS as readonly string[]).includes(t);
const bound = (t: string): number | undefined => (isTarget(t) ? TOLERANCES[t].weightSqnrMinDb : undefined);

function run(models: string, targets: string, converter: string): ParityReport {
  const dir = mkdtempSync(join(tmpdir(), 'tmgt-fixture-'));
  tmgt(['check', '--models', models, '--targets', targets, '--converter', converter, '--report-dir', dir]);
  const v1 = JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8')) as V1Report; // written by the run just made
  const tensorsByArtifact = new Map<string, InspectedTensor[]>();
  for (const cell of v1.cells) {
    if (cell.artifact === undefined) continue;
    const inspected = JSON.parse(tmgt(['inspect', cell.artifact, '--json'])) as { tensors: InspectedTensor[] }; // tmgt inspect --json
    tensorsByArtifact.set(cell.artifact, inspected.tensors);
  }
  const report = upgradeReport(v1, { tensorsByArtifact, sqnrBoundDb: bound, skipInapplicable: true });
  for (const c of report.cells) if (c.status === 'done') delete c.artifact; // temp paths: not worth committing
  return report;
}

const mutantsJson = JSON.parse(
  tmgt([
    'mutants',
    '--json',
    '--mutants',
    'mutant:lm-head-int8-as-f32,mutant:qk-permute-skipped,mutant:lm-head-zeros',
    '--models',
    'llama-tiny,qwen2-tiny',
  ]),
) as { mutants: { mutant: string; model: string; target: string; expected: string[]; got: string[]; killed: boolean }[] };
const mutants = mutantsJson.mutants.map(({ mutant, model, target, expected, got, killed }) => ({
  mutant,
  model,
  target,
  expected: expected.join(','),
  got,
  killed,
}));

const report = mergeReports([
  run('llama-tiny', 'gguf/q8_0,apr/int8', 'mutant:lm-head-int8-as-f32'),
  run('llama-tiny,gpt2-tiny', 'gguf/q8_0,gguf/q4_0', 'mutant:qk-permute-skipped'),
  { ...run('llama-tiny,qwen2-tiny', 'gguf/q8_0,apr/int8', 'reference'), mutants },
]);
const before = relabelConverter(run('llama-tiny', 'gguf/q8_0,gguf/q4_0', 'reference'), 'reference', 'mutant:qk-permute-skipped');
const previous = mergeReports([before, { ...report, cells: report.cells.filter((c) => c.converter !== 'mutant:qk-permute-skipped') }]);
delete previous.mutants;

mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'report.json'), `${JSON.stringify(report)}\n`);
writeFileSync(join(OUT, 'previous.json'), `${JSON.stringify(previous)}\n`);
console.log(
  `report: ${report.summary.passed}/${report.summary.checks} passing, ${report.cells.length} cells; ` +
    `previous: ${previous.summary.passed}/${previous.summary.checks}`,
);
