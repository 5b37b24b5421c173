/**
 * `tmgt`: one command table. Every command has a one-line summary, a usage text (`tmgt <command> --help`, exit 0)
 * and strict flags; the dispatcher turns harness errors into exit 2.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SUITES, type SuiteName } from '../contracts/verdicts.js';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS } from '../config.js';
import { loadConfig } from '../config-file.js';
import { convertInProcess, resolveConverter } from '../converters/registry.js';
import { parseTarget } from '../converters/targets.js';
import { serveEngineRequest } from '../engines/isolated.js';
import { HarnessError, UsageError } from '../errors.js';
import { addDriftOrdering, planClaims, runCell, type Cell, type CellResult, type RunOptions } from '../matrix/run.js';
import { estimateCellCost, mergeReports, parseShard, shardCells, sortCells } from '../report/merge.js';
import { consoleLines, parityReport } from '../report/parity.js';
import { renderTicket } from '../report/ticket.js';
import { buildModel } from '../zoo/build.js';
import { checkpointF32Bytes } from '../zoo/checkpoint.js';
import { findModelSpec, listModelSpecs, registerCheckpointDir, REPO_ROOT } from '../zoo/specs.js';
import { diff } from './diff.js';
import { inspect } from './inspect.js';
import { mutantsCommand } from './mutants.js';
import { oraclesCommand } from './oracles.js';
import { readReport, requireReport, writeOutputs } from './outputs.js';
import { Journal } from './journal.js';
import { Progress } from './progress.js';
import { CellPool, defaultJobs, serveCells } from './cell-pool.js';

export const EXIT = { pass: 0, fail: 1, harness: 2 } as const;

// Our own package.json: it has a version string.
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** One command of the table. `run` gets the arguments after the command name. */
interface Command {
  summary: string;
  usage: string;
  /** Hidden commands (internal protocols) are left out of the overview. */
  hidden?: boolean;
  run(args: string[]): Promise<number> | number;
}

function list(value: string | undefined, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`empty list '${value}'`);
  return items;
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  return parseArgs({ args, options, strict: true, allowPositionals });
}

const CHECK_USAGE = `tmgt check [--models a,b,name=HF_DIR] [--targets gguf/f32,gguf/q8_0] [--converter reference|llama.cpp|mutant:<id>|<config id>]
           [--suites ${SUITES.join(',')}] [--report-dir reports] [--config tmgt.config.ts] [--max-new-tokens 32]
           [--shard i/n] [--previous OLD/parity.json] [--resume] [--ppl-text FILE] [--jobs auto|N]

Converts every model × target with the converter, judges every planned claim, prints one error: line per failing
verdict and 'parity: N/M checks passing', and writes <report-dir>/parity.json, index.html (the dashboard, with the
trend against the previous parity.json) and junit.xml. --shard i/n runs a deterministic, balanced slice of the cells
(tmgt report merge puts the slices back together). Every finished cell is kept on disk as it completes: after a crash,
--resume (same flags, same report dir) runs only the unfinished cells. ^C stops after the current cell: exit 2.
--ppl-text: held-out text for the perplexity suite (documents separated by blank lines; default models/heldout.txt).
--jobs: cells run at once, each in its own worker process with cores/N engine threads (default auto: one per core, fewer
when the models are big — a cell peaks near 9× its model's f32 weights — and 1 for a single cell).
Exit codes: 0 all checks pass, 1 a check failed, 2 the harness could not run (bad flag, nothing planned, an internal error).`;

/** Everything a `tmgt check` run derives from its flags: the parent and its `__cells` workers derive the same. */
interface CheckPlan {
  cells: Cell[];
  runOptions: RunOptions;
  reportDir: string;
  suites: SuiteName[];
  shard: { index: number; count: number } | undefined;
  shardFlag: string | undefined;
  previousFlag: string | undefined;
  resume: boolean;
  jobs: number | 'auto';
  journalPlan: Record<string, unknown>;
}

const CHECK_FLAGS = {
  models: { type: 'string' },
  targets: { type: 'string' },
  converter: { type: 'string' },
  suites: { type: 'string' },
  'report-dir': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  config: { type: 'string' },
  shard: { type: 'string' },
  previous: { type: 'string' },
  resume: { type: 'boolean', default: false },
  'ppl-text': { type: 'string' },
  jobs: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

async function planCheck(args: string[]): Promise<CheckPlan> {
  const { values } = parse(args, CHECK_FLAGS);
  const config = await loadConfig(values.config);
  // `name=DIR` registers a local HF checkpoint directory under that name (bring your own checkpoint).
  const models = list(values.models, config.matrix?.models ?? DEFAULT_MATRIX.models).map((m) => {
    const eq = m.indexOf('=');
    if (eq < 0) return findModelSpec(m).name;
    return registerCheckpointDir(m.slice(0, eq), resolve(m.slice(eq + 1))).name;
  });
  const targets = list(values.targets, config.matrix?.targets ?? DEFAULT_MATRIX.targets).map(parseTarget);
  const commandConverters = config.converters ?? [];
  const converter = resolveConverter(values.converter ?? config.matrix?.converter ?? DEFAULT_MATRIX.converter, commandConverters).id;
  const suites = list(values.suites, SUITES).map((s) => {
    // Widened to test membership of an arbitrary string.
    if (!(SUITES as readonly string[]).includes(s)) throw new UsageError(`unknown suite '${s}' (known: ${SUITES.join(', ')})`);
    return s as SuiteName; // checked against SUITES just above
  });
  const maxNewTokens = values['max-new-tokens'] === undefined ? DEFAULT_MATRIX.maxNewTokens : Number(values['max-new-tokens']);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > 256)
    throw new UsageError(`--max-new-tokens must be an integer in 1..256`);
  const jobsFlag = values.jobs ?? 'auto';
  const jobs = jobsFlag === 'auto' ? 'auto' : Number(jobsFlag);
  if (jobs !== 'auto' && (!Number.isInteger(jobs) || jobs < 1 || jobs > 64))
    throw new UsageError(`--jobs must be 'auto' or an integer in 1..64`);
  const reportDir = resolve(values['report-dir'] ?? 'reports');
  const pplText = values['ppl-text'] === undefined ? undefined : resolve(values['ppl-text']);
  if (pplText !== undefined && !existsSync(pplText)) throw new UsageError(`--ppl-text: ${pplText} does not exist`);

  const all = sortCells(
    models
      .flatMap((model) => targets.map((target): Cell => ({ converter, model, target, engine: 'bundled' })))
      .map((c) => ({ ...c, target: c.target.id, cell: c })),
  ).map((c) => c.cell);
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  const cells =
    shard === undefined ? all : shardCells(all, shard.index, shard.count, (c) => estimateCellCost({ model: c.model, target: c.target.id }));
  const planned = cells.reduce((n, c) => n + planClaims(c.target, DEFAULT_PROMPTS, suites).length, 0);
  if (planned === 0)
    throw new UsageError(
      `nothing to check: the suites ${suites.join(', ')} apply to none of the targets ${targets.map((t) => t.id).join(', ')}${shard ? ` in shard ${values.shard}` : ''}`,
    );
  return {
    cells,
    runOptions: {
      workDir: reportDir,
      prompts: DEFAULT_PROMPTS,
      maxNewTokens,
      converterTimeoutMs: DEFAULT_MATRIX.converterTimeoutMs,
      suites,
      commandConverters,
      ...(pplText === undefined ? {} : { perplexityTextPath: pplText }),
    },
    reportDir,
    suites,
    shard,
    shardFlag: values.shard,
    previousFlag: values.previous,
    resume: values.resume,
    jobs,
    journalPlan: {
      version: VERSION,
      converter,
      cells: cells.map((c) => [c.model, c.target.id]),
      suites,
      maxNewTokens,
      prompts: DEFAULT_PROMPTS,
      pplText,
    },
  };
}

/** The f32 bytes of the largest model a run holds (config.json's sizes), for the default --jobs. */
async function largestWeightsBytes(cells: readonly Cell[]): Promise<number> {
  let largest = 0;
  for (const model of new Set(cells.map((c) => c.model))) {
    const spec = findModelSpec(model);
    const dir = spec.kind === 'checkpoint' ? spec.dir : await buildModel(spec);
    largest = Math.max(largest, checkpointF32Bytes(dir));
  }
  return largest;
}

async function check(args: string[]): Promise<number> {
  const p = await planCheck(args);
  const { cells, reportDir } = p;
  mkdirSync(reportDir, { recursive: true });
  // The trend baseline: the previous run's report in the same directory (or --previous FILE), read before it is replaced.
  const previous = readReport(p.previousFlag === undefined ? join(reportDir, 'parity.json') : resolve(p.previousFlag));

  const journal = new Journal(reportDir, p.journalPlan, p.resume);
  const done = journal.finished();
  const todo = cells.map((_, i) => i).filter((i) => !done.has(i));
  const jobs =
    p.jobs === 'auto' ? defaultJobs(todo.length, await largestWeightsBytes(cells), totalmem()) : Math.min(p.jobs, Math.max(1, todo.length));
  const results = new Map<number, CellResult>(done);
  const progress = new Progress(cells.length, jobs);
  const ordered = (): CellResult[] => [...results].sort(([a], [b]) => a - b).map(([, r]) => r);
  // ^C stops cleanly after the cells in progress: the partial report is written, marked incomplete, exit 2. A second ^C
  // stops at once (the journal still holds every finished cell for --resume).
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(EXIT.harness);
    interrupted = true;
    process.stderr.write('\ntmgt: interrupted: stopping after the cells in progress (^C again to stop now; tmgt check --resume goes on)\n');
  };
  process.on('SIGINT', onSigint);
  const pool = jobs > 1 ? new CellPool(jobs, args) : undefined;
  try {
    for (const i of done.keys()) progress.finishedEarlier(i, label(cells[i] as Cell)); // a journal index is a cell index
    // The costliest cells first, so the last ones to finish are short.
    const queue = [...todo].sort((a, b) => cost(cells[b] as Cell) - cost(cells[a] as Cell) || a - b); // indices of cells
    const lane = async (): Promise<void> => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        // Let signals in: a cell may finish without ever yielding to the event loop (its awaits resolve as microtasks).
        await new Promise((resolve) => setImmediate(resolve));
        if (interrupted) return;
        const cell = cells[i] as Cell; // queue holds cell indices
        progress.start(i, label(cell));
        const r = pool ? await pool.run(i) : await runCell(cell, p.runOptions);
        journal.record(i, r);
        progress.done(i, r);
        results.set(i, r);
        // Completed cells are on disk even if the run is killed.
        writeOutputs(reportDir, parityReport(ordered(), VERSION, { incomplete: true }), { final: false });
      }
    };
    await Promise.all(Array.from({ length: jobs }, lane));
  } finally {
    pool?.close();
    process.off('SIGINT', onSigint);
    progress.end();
  }
  if (interrupted) {
    for (const line of consoleLines(parityReport(ordered(), VERSION, { incomplete: true }))) process.stdout.write(line + '\n');
    process.stderr.write(`tmgt: interrupted after ${results.size}/${cells.length} cells; the partial report is marked incomplete\n`);
    return EXIT.harness;
  }
  const final = ordered();
  // Drift ordering compares the cells of one model with each other: a shard holds only some of them, so the claim is
  // made where the shards come together (tmgt report merge).
  if (p.shard === undefined) addDriftOrdering(final);
  const report = parityReport(final, VERSION);
  writeOutputs(reportDir, report, { final: true, previous });
  journal.close();
  for (const line of consoleLines(report)) process.stdout.write(line + '\n');
  // A claim the harness could not evaluate (oracle missing, internal error) means the run itself failed.
  if (report.cells.some((c) => c.checks.some((k) => k.verdicts.some((v) => v.code === 'F-RUNTIME-003')))) return EXIT.harness;
  if (report.summary.failed > 0) return EXIT.fail;
  if (report.summary.checks > 0) return EXIT.pass;
  process.stderr.write('tmgt: no check ran: every cell was skipped (see the skipped: lines)\n');
  return EXIT.harness;
}

const label = (cell: Cell): string => `${cell.model} × ${cell.target.id} (${cell.converter}, ${cell.engine})`;
const cost = (cell: Cell): number => estimateCellCost({ model: cell.model, target: cell.target.id });

/** `tmgt __cells <check flags>`: a `--jobs` worker (src/cli/cell-pool.ts). */
async function cellsWorker(args: string[]): Promise<number> {
  const p = await planCheck(args);
  return serveCells(async (index) => {
    const cell = p.cells[index];
    if (cell === undefined) throw new HarnessError('E-WORKER', `no cell ${index + 1} in a plan of ${p.cells.length}`);
    return runCell(cell, p.runOptions);
  });
}

const CONVERT_USAGE = `tmgt convert --model DIR --target gguf/q8_0 --out FILE [--converter reference|mutant:<id>]

Converts one HF checkpoint directory with a built-in converter (the reference or one of its mutants).`;

function convert(args: string[]): number {
  const { values } = parse(args, {
    model: { type: 'string' },
    target: { type: 'string' },
    out: { type: 'string' },
    converter: { type: 'string' },
  });
  if (!values.model || !values.target || !values.out) throw new UsageError('convert needs --model DIR --target TARGET --out FILE');
  const target = parseTarget(values.target);
  const conv = resolveConverter(values.converter ?? 'reference');
  if (conv.kind !== 'builtin')
    throw new UsageError(`convert runs the built-in converters only ('${conv.id}' is a command converter: run it directly)`);
  const out = resolve(values.out);
  const r = convertInProcess(
    { converter: conv.id, model: 'cli', sourceDir: resolve(values.model), target, outDir: '', timeoutMs: 0 },
    conv.mutant,
    out,
  );
  if (r.status !== 'ok')
    throw new HarnessError('E-CONVERT', `${conv.id} could not convert ${values.model}: ${r.status === 'failed' ? r.log : r.reason}`);
  process.stderr.write(`wrote ${values.out} (${target.id}, ${conv.id})\n`);
  return EXIT.pass;
}

const MODELS_USAGE = `tmgt models list
tmgt models build NAME...

list: the zoo (tiny models; shape-faithful ones marked nightly). build: builds each model (content-addressed cache) and
prints its HF checkpoint directory.`;

async function models(args: string[]): Promise<number> {
  const { positionals } = parse(args, {}, true);
  const [sub, ...names] = positionals;
  if (sub === 'list') {
    if (names.length > 0) throw new UsageError('models list takes no arguments');
    for (const s of listModelSpecs()) {
      const kind =
        'nightly' in s && s.nightly === true ? (s.kind === 'seeded' ? 'shape-faithful (nightly)' : `${s.kind} (nightly)`) : s.kind;
      process.stdout.write(`${s.name}\t${s.arch}\t${kind}\t${s.description}\n`);
    }
    return EXIT.pass;
  }
  if (sub === 'build') {
    if (names.length === 0) throw new UsageError('models build needs at least one model name');
    const specs = names.map(findModelSpec); // unknown names fail before any work
    for (const spec of specs) process.stdout.write(`${await buildModel(spec)}\n`);
    return EXIT.pass;
  }
  throw new UsageError(`unknown models subcommand '${sub ?? ''}' (list, build)`);
}

const TICKET_USAGE = `tmgt ticket [--report reports/parity.json] [--out reports/TICKET.md]

One issue-ready section per failure group (same code and tensor role across models and targets): title, source line,
severity, affected models (Model | Target | Tensor | Expected | Got | Code), the error lines, the commands that reproduce it.`;

function ticket(args: string[]): number {
  const { values } = parse(args, { report: { type: 'string' }, out: { type: 'string' } });
  const reportPath = resolve(values.report ?? join('reports', 'parity.json'));
  const out = resolve(values.out ?? join('reports', 'TICKET.md'));
  const report = requireReport(reportPath);
  writeFileSync(out, renderTicket(report));
  process.stderr.write(`wrote ${out} (${report.summary.failed} failing checks)\n`);
  return EXIT.pass;
}

const REPORT_USAGE = `tmgt report merge DIR... [-o reports]

Merges the parity.json of shard runs (tmgt check --shard i/n) into one report — the same parity.json (timings aside),
index.html and junit.xml as an unsharded run.`;

function report(args: string[]): number {
  const { values, positionals } = parse(args, { out: { type: 'string', short: 'o' }, previous: { type: 'string' } }, true);
  const [sub, ...dirs] = positionals;
  if (sub !== 'merge') throw new UsageError(`unknown report subcommand '${sub ?? ''}' (merge)`);
  if (dirs.length === 0) throw new UsageError('report merge needs at least one directory holding a parity.json');
  const shards = mergeReports(dirs.map((d) => requireReport(join(resolve(d), 'parity.json'))));
  const cells = shards.cells.map((c) => ({ ...c, checks: c.checks.filter((k) => k.prompt !== 'drift ordering') })) as CellResult[]; // same cells, fewer checks
  addDriftOrdering(cells);
  const merged = parityReport(cells, shards.tool.version, {
    ...(shards.incomplete === true ? { incomplete: true } : {}),
    ...(shards.mutants === undefined ? {} : { mutants: shards.mutants }),
  });
  const out = resolve(values.out ?? 'reports');
  mkdirSync(out, { recursive: true });
  const previous = values.previous === undefined ? undefined : readReport(resolve(values.previous));
  writeOutputs(out, merged, { final: true, previous });
  for (const line of consoleLines(merged)) process.stdout.write(line + '\n');
  return merged.summary.failed > 0 ? EXIT.fail : EXIT.pass;
}

const COMMANDS: Record<string, Command> = {
  check: { summary: 'run the parity matrix and judge every claim', usage: CHECK_USAGE, run: check },
  convert: { summary: 'convert one checkpoint with a built-in converter', usage: CONVERT_USAGE, run: convert },
  mutants: {
    summary: 'the mutant kill matrix: every mutant converter × model → killing code',
    usage:
      'tmgt mutants [--json] [--mutants a,b] [--models m] [--work-dir DIR]\n\nExit codes: 0 all killed, 1 a mutant survived, 2 a cell could not be run.',
    run: mutantsCommand,
  },
  ticket: { summary: 'reports/TICKET.md: issue-ready sections per failure group', usage: TICKET_USAGE, run: ticket },
  report: { summary: 'merge the reports of sharded runs', usage: REPORT_USAGE, run: report },
  models: { summary: 'list or build the zoo', usage: MODELS_USAGE, run: models },
  oracles: {
    summary: 're-pin oracles/manifest.json (the drift baseline)',
    usage: 'tmgt oracles pin [MODEL...]\n\nWith no names, pins every tiny zoo model; with names, re-pins those and keeps the others.',
    run: oraclesCommand,
  },
  inspect: {
    summary: 'a model file (GGUF, APR, safetensors): metadata, tensors, stats',
    usage: 'tmgt inspect FILE [--json]\n\nExit codes: 0 readable, 1 malformed (F-FILE verdicts), 2 unreadable.',
    run: (args) => inspect(args),
  },
  init: {
    summary: "set a converter's repository up: tmgt.config.ts and a GitHub parity workflow",
    usage:
      'tmgt init --converter-cmd "my-conv --in {source} --out {out} --type {type}" [--format gguf|apr|safetensors] [--targets …] [--force]',
    run: async (args) => (await import('./init.js')).initCommand(args),
  },
  cache: {
    summary: 'where the cache is and what it holds (info), or empty it (clean [--kind models|oracles|artifacts])',
    usage: 'tmgt cache info [--json] | tmgt cache clean [--kind models|oracles|artifacts]',
    run: async (args) => (await import('./cache.js')).cacheCommand(args),
  },
  diff: {
    summary: 'per-tensor SQNR / cosine / max diff of two model files (GGUF ↔ HF names)',
    usage: 'tmgt diff A B [--json]',
    run: (args) => diff(args),
  },
  __cells: {
    summary: 'internal: a tmgt check --jobs worker (src/cli/cell-pool.ts)',
    usage: 'tmgt __cells <tmgt check flags>',
    hidden: true,
    run: cellsWorker,
  },
  __engine: {
    summary: 'internal: one engine run in a child process (src/engines/isolated.ts)',
    usage: 'tmgt __engine llama.cpp DIR',
    hidden: true,
    run: async (args) => {
      const [engine, dir] = args;
      if (engine !== 'llama.cpp' || dir === undefined) throw new UsageError('usage: tmgt __engine llama.cpp DIR');
      const { runLlamaCppEngine } = await import('../engines/llama-cpp.js');
      await serveEngineRequest(dir, runLlamaCppEngine);
      return EXIT.pass;
    },
  },
};

function overview(): string {
  const names = Object.keys(COMMANDS).filter((n) => !COMMANDS[n]?.hidden);
  const width = Math.max(...names.map((n) => n.length));
  return [
    'tmgt — ground-truth parity harness for model converters and quantizers',
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]?.summary ?? ''}`),
    '',
    "Run 'tmgt <command> --help' for a command's flags.",
    'Exit codes: 0 all checks pass, 1 a check failed, 2 the harness could not run.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      const topic = name === 'help' ? rest[0] : undefined;
      const cmd = topic === undefined ? undefined : COMMANDS[topic];
      if (topic !== undefined && cmd === undefined) throw new UsageError(`unknown command '${topic}'`);
      process.stdout.write((cmd?.usage ?? overview()) + '\n');
      return name === undefined ? EXIT.harness : EXIT.pass;
    }
    if (name === '--version' || name === '-v') {
      process.stdout.write(VERSION + '\n');
      return EXIT.pass;
    }
    const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (cmd === undefined)
      throw new UsageError(
        `unknown command '${name}' (${Object.keys(COMMANDS)
          .filter((n) => !COMMANDS[n]?.hidden)
          .join(', ')}, help)`,
      );
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(cmd.usage + '\n');
      return EXIT.pass;
    }
    return await cmd.run(rest);
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
    if (e instanceof HarnessError) process.stderr.write(`tmgt: ${e.message}\n`);
    else if (e instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
      process.stderr.write(`tmgt: ${e.message}\n`);
    else process.stderr.write(`tmgt: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.harness;
  }
}
