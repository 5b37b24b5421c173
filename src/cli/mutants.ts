/**
 * `tmgt mutants`: the mutant-kill matrix. Every mutant of the catalogue (src/converters/mutants.ts) is
 * run as a real converter (`tmgt convert --converter mutant:<id>`) on every tiny model whose
 * architecture it applies to, at the mutant's own target, and judged by every suite (`runCell`).
 *
 * A cell is **killed** when it has at least one failing verdict AND every code the mutant expects is
 * among the failing verdicts' codes: "some check failed" alone is not enough (a mutant must be caught
 * for the reason it exists), and extra codes are fine (one bug usually trips several layers).
 * A cell whose converter failed (F-RUNTIME-001 the mutant does not expect: its mutate threw, so it was
 * never applied) or that was skipped is a harness error, not a survivor.
 *
 * Exit codes: 0 every cell killed, 1 a mutant survived, 2 a harness error (bad flags, a cell that
 * could not be run).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { VerdictCode } from '../contracts/verdicts.js';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS, TRAINED_MODELS } from '../config.js';
import { findMutant, MUTANTS, mutantArchs, type Mutant } from '../converters/mutants.js';
import { parseTarget } from '../converters/targets.js';
import { errorMessage, UsageError } from '../errors.js';
import { ALL_SUITES, runCell, type CellResult, type RunOptions } from '../matrix/run.js';
import { textTable } from '../report/table.js';
import { findModelSpec } from '../zoo/specs.js';

const EXIT = { pass: 0, fail: 1, harness: 2 } as const;

/** One (mutant, model) cell of the kill matrix, as `--json` prints it. */
export interface MutantKill {
  mutant: string;
  model: string;
  target: string;
  /** The codes the mutant must raise (all of them). */
  expected: VerdictCode[];
  /** The distinct codes of the cell's failing verdicts, sorted. */
  got: VerdictCode[];
  killed: boolean;
  /** Set when the cell could not be judged (converter failed, cell skipped, harness exception): neither killed nor survived. */
  error?: string;
}

/** `tmgt mutants --json` output. */
export interface MutantsReport {
  mutants: MutantKill[];
}

/** One cell to run: a mutant on one model. */
export interface MutantCell {
  mutant: Mutant;
  model: string;
}

/**
 * The cells of a kill matrix, in catalogue order: each mutant on each of `models` it applies to (its `models` when it
 * names them, else every model of its architectures). With no `models`: the mutant's own models, else the trained zoo.
 */
export function mutantCells(mutants: readonly Mutant[], models?: readonly string[]): MutantCell[] {
  return mutants.flatMap((mutant) => {
    const own = mutant.models;
    const candidates = models ?? own ?? TRAINED_MODELS;
    return candidates
      .filter((model) => (own ? own.includes(model) : mutantArchs(mutant).includes(findModelSpec(model).arch)))
      .map((model) => ({ mutant, model }));
  });
}

/** Every model the default kill matrix runs on: the trained zoo and the models mutants name. */
export const MUTANT_MODELS: readonly string[] = [...new Set([...TRAINED_MODELS, ...MUTANTS.flatMap((m) => m.models ?? [])])];

/** Judge one cell's result against the mutant (see the module comment for the rule). */
export function judgeKill(mutant: Mutant, model: string, r: CellResult): MutantKill {
  const base = { mutant: mutant.id, model, target: mutant.target, expected: [...mutant.expected] };
  const failing = r.checks.flatMap((c) => c.verdicts.filter((v) => v.status === 'fail'));
  const got = [...new Set(failing.map((v) => v.code))].sort();
  if (r.status === 'skipped') return { ...base, got, killed: false, error: `skipped: ${r.reason}` };
  const converterFailure = failing.find((v) => v.code === 'F-RUNTIME-001');
  if (converterFailure && !mutant.expected.includes('F-RUNTIME-001')) {
    // The converter's own error line (`tmgt: … Error: …`), not the stack frames after it.
    const lines = String(converterFailure.evidence['logTail'] ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('at '));
    const tail = lines.find((l) => /error/i.test(l)) ?? lines.slice(-2).join(' | ');
    return {
      ...base,
      got,
      killed: false,
      error: `the mutant could not be applied: ${converterFailure.message}${tail ? ` (${tail})` : ''}`,
    };
  }
  const killed = failing.length > 0 && mutant.expected.every((c) => got.includes(c));
  return { ...base, got, killed };
}

/** Run one cell with every suite and judge it; a harness exception becomes the cell's `error`. */
export async function runMutantCell(cell: MutantCell, opts: Pick<RunOptions, 'workDir'> & Partial<RunOptions>): Promise<MutantKill> {
  const { mutant, model } = cell;
  try {
    const r = await runCell(
      { converter: mutant.id, model, target: parseTarget(mutant.target), engine: 'bundled' },
      {
        prompts: DEFAULT_PROMPTS,
        maxNewTokens: DEFAULT_MATRIX.maxNewTokens,
        converterTimeoutMs: DEFAULT_MATRIX.converterTimeoutMs,
        suites: ALL_SUITES,
        ...opts,
      },
    );
    return judgeKill(mutant, model, r);
  } catch (e) {
    return {
      mutant: mutant.id,
      model,
      target: mutant.target,
      expected: [...mutant.expected],
      got: [],
      killed: false,
      error: `harness error: ${errorMessage(e)}`,
    };
  }
}

/** One line per cell: `killed by …`, `SURVIVED: … got …`, or `ERROR: …`. */
export function describeKill(k: MutantKill): string {
  if (k.error !== undefined) return `ERROR: ${k.error}`;
  if (k.killed) {
    const others = k.got.length - k.expected.length;
    return `killed by ${k.expected.join(', ')}${others > 0 ? ` (+${others} other code${others > 1 ? 's' : ''})` : ''}`;
  }
  const missing = k.expected.filter((c) => !k.got.includes(c));
  return `SURVIVED: missing ${missing.join(', ')}; got ${k.got.length ? k.got.join(', ') : 'no failing verdict'}`;
}

/** The kill matrix as text lines (mutant × model, long form) with a summary line. */
export function killMatrixLines(kills: readonly MutantKill[]): string[] {
  const killed = kills.filter((k) => k.killed).length;
  const errors = kills.filter((k) => k.error !== undefined).length;
  const survived = kills.length - killed - errors;
  const mutants = new Set(kills.map((k) => k.mutant)).size;
  return [
    ...textTable(
      ['mutant', 'target', 'model', 'result'],
      kills.map((k) => [k.mutant, k.target, k.model, describeKill(k)]),
    ),
    `${mutants} mutants, ${kills.length} cells: ${killed} killed, ${survived} survived, ${errors} error${errors === 1 ? '' : 's'}`,
  ];
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`empty list '${value}'`);
  return items;
}

const USAGE = `tmgt mutants [--json] [--mutants mutant:a,mutant:b] [--models llama-tiny,qwen2-tiny,gpt2-tiny] [--work-dir DIR]

Runs every mutant converter on every tiny model it applies to, at its target, with every suite, and
prints the kill matrix. A cell is killed when a check fails and every expected code is raised.
Exit codes: 0 all killed, 1 a mutant survived, 2 the harness could not run a cell.`;

/** `tmgt mutants`: see the module comment. */
export async function mutantsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      mutants: { type: 'string' },
      models: { type: 'string' },
      'work-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return EXIT.pass;
  }
  const ids = list(values.mutants);
  const mutants = ids
    ? ids.map((id) => {
        const m = findMutant(id);
        if (!m) throw new UsageError(`unknown mutant '${id}' (known: ${MUTANTS.map((x) => x.id).join(', ')})`);
        return m;
      })
    : [...MUTANTS];
  const models = list(values.models)?.map((m) => findModelSpec(m).name);
  const cells = mutantCells(mutants, models);
  if (cells.length === 0) throw new UsageError(`no mutant applies to the models ${(models ?? MUTANT_MODELS).join(', ')}`);

  const workDirFlag = values['work-dir'];
  const ownsWorkDir = workDirFlag === undefined;
  const workDir = ownsWorkDir ? mkdtempSync(join(tmpdir(), 'tmgt-mutants-')) : resolve(workDirFlag);
  mkdirSync(workDir, { recursive: true });
  const kills: MutantKill[] = [];
  const start = performance.now();
  try {
    for (const [i, cell] of cells.entries()) {
      const t0 = performance.now();
      process.stderr.write(`[${i + 1}/${cells.length}] ${cell.mutant.id} × ${cell.model} @ ${cell.mutant.target} … `);
      const k = await runMutantCell(cell, { workDir });
      kills.push(k);
      process.stderr.write(`${describeKill(k)} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
  } finally {
    if (ownsWorkDir) rmSync(workDir, { recursive: true, force: true });
  }
  process.stderr.write(`${cells.length} cells in ${((performance.now() - start) / 1000).toFixed(1)} s\n`);

  if (values.json) process.stdout.write(JSON.stringify({ mutants: kills } satisfies MutantsReport, null, 1) + '\n');
  else for (const line of killMatrixLines(kills)) process.stdout.write(line + '\n');
  if (kills.some((k) => k.error !== undefined)) return EXIT.harness;
  return kills.every((k) => k.killed) ? EXIT.pass : EXIT.fail;
}
