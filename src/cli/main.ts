import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { SuiteName } from '../checks/codes.js';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS } from '../config.js';
import { loadConfig } from '../config-file.js';
import type { CommandConverter } from '../converters/adapter.js';
import { findMutant, MUTANTS } from '../converters/mutants.js';
import { serveEngineRequest } from '../engines/isolated.js';
import { mutantsCommand } from './mutants.js';
import { oraclesPinCommand } from '../oracle/manifest.js';
import { convertCheckpoint } from '../converters/reference.js';
import { parseTarget, TARGETS } from '../converters/targets.js';
import { diff } from './diff.js';
import { inspect } from './inspect.js';
import { HarnessError, UsageError } from '../errors.js';
import { addDriftOrdering, ALL_SUITES, runCell, type Cell, type CellResult } from '../matrix/run.js';
import { consoleLines, parityReport } from '../report/parity.js';
import { buildModel } from '../zoo/build.js';
import { findModelSpec, listModelSpecs, registerCheckpointDir, REPO_ROOT } from '../zoo/specs.js';

export const EXIT = { pass: 0, fail: 1, harness: 2 } as const;

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const USAGE = `tmgt — ground-truth parity harness for model converters and quantizers

Usage:
  tmgt check [--models a,b,name=HF_DIR] [--targets gguf/f32,gguf/q8_0] [--converter reference|mutant:<id>]
             [--suites file,layout,data-quality,logits] [--report-dir reports] [--config tmgt.config.ts]
  tmgt convert --model DIR --target gguf/q8_0 --out FILE [--converter reference|mutant:<id>]
  tmgt models list
  tmgt mutants [--json] [--mutants a,b] [--models m]   the mutant kill matrix (exit 1 if one survives)
  tmgt oracles pin [MODEL...]      re-pin oracles/manifest.json (the drift baseline)
  tmgt models build NAME...
  tmgt inspect FILE [--json]      format, metadata, tensors with stats (GGUF, safetensors, APR)
  tmgt diff A B [--json]          per-tensor SQNR/cosine/max diff across formats (GGUF ↔ HF names)

Exit codes: 0 all checks pass, 1 a check failed, 2 the harness could not run.`;

function list(value: string | undefined, fallback: readonly string[]): string[] {
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`empty list '${value}'`);
  return items;
}

function knownConverter(id: string, commands: readonly CommandConverter[] = []): string {
  if (id === 'reference' || findMutant(id) || commands.some((c) => c.id === id)) return id;
  const known = ['reference', ...commands.map((c) => c.id), ...MUTANTS.map((m) => m.id)];
  throw new UsageError(`unknown converter '${id}' (known: ${known.join(', ')})`);
}

async function check(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      models: { type: 'string' },
      targets: { type: 'string' },
      converter: { type: 'string' },
      suites: { type: 'string' },
      'report-dir': { type: 'string' },
      'max-new-tokens': { type: 'string' },
      config: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  // `name=DIR` registers a local HF checkpoint directory under that name (bring your own checkpoint).
  const models = list(values.models, DEFAULT_MATRIX.models).map((m) => {
    const eq = m.indexOf('=');
    if (eq < 0) return findModelSpec(m).name;
    return registerCheckpointDir(m.slice(0, eq), resolve(m.slice(eq + 1))).name;
  });
  const targets = list(values.targets, DEFAULT_MATRIX.targets).map(parseTarget);
  const config = await loadConfig(values.config);
  const commandConverters = config.converters ?? [];
  const converter = knownConverter(values.converter ?? config.matrix?.converter ?? DEFAULT_MATRIX.converter, commandConverters);
  const suites = list(values.suites, ALL_SUITES).map((s) => {
    if (!(ALL_SUITES as readonly string[]).includes(s)) throw new UsageError(`unknown suite '${s}' (known: ${ALL_SUITES.join(', ')})`);
    return s as SuiteName;
  });
  const maxNewTokens = values['max-new-tokens'] === undefined ? DEFAULT_MATRIX.maxNewTokens : Number(values['max-new-tokens']);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > 256) throw new UsageError(`--max-new-tokens must be an integer in 1..256`);
  const reportDir = resolve(values['report-dir'] ?? 'reports');
  mkdirSync(reportDir, { recursive: true });

  const cells: Cell[] = models.flatMap((model) => targets.map((target) => ({ converter, model, target, engine: 'bundled' as const })));
  const results: CellResult[] = [];
  const writeReport = () => {
    const report = parityReport(results, VERSION);
    writeFileSync(join(reportDir, 'parity.json'), JSON.stringify(report, null, 1) + '\n');
    return report;
  };
  for (const [i, cell] of cells.entries()) {
    process.stderr.write(`[${i + 1}/${cells.length}] ${cell.model} × ${cell.target.id} (${cell.converter}, ${cell.engine}) …\n`);
    const r = await runCell(cell, { workDir: reportDir, prompts: DEFAULT_PROMPTS, maxNewTokens, converterTimeoutMs: DEFAULT_MATRIX.converterTimeoutMs, suites, commandConverters });
    const failed = r.checks.filter((c) => c.status === 'fail').length;
    if (r.skipped !== undefined) process.stderr.write(`      skipped: ${r.skipped}\n`);
    else process.stderr.write(`      ${r.checks.length - failed}/${r.checks.length} checks passing in ${(r.durationMs / 1000).toFixed(1)} s\n`);
    results.push(r);
    writeReport(); // completed cells are on disk even if the run is killed
  }
  addDriftOrdering(results);
  const report = writeReport();
  for (const line of consoleLines(report)) process.stdout.write(line + '\n');
  if (report.summary.failed > 0) return EXIT.fail;
  if (report.summary.checks > 0) return EXIT.pass;
  // Nothing ran: every cell was skipped (an external converter not installed here) — not a failure.
  return results.some((r) => r.skipped !== undefined) ? EXIT.pass : EXIT.harness;
}

function convert(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string' }, target: { type: 'string' }, out: { type: 'string' }, converter: { type: 'string' } },
    strict: true,
  });
  if (!values.model || !values.target || !values.out) throw new UsageError('convert needs --model DIR --target TARGET --out FILE');
  const target = parseTarget(values.target);
  const converter = knownConverter(values.converter ?? 'reference');
  const mutant = findMutant(converter);
  convertCheckpoint(resolve(values.model), target, resolve(values.out), mutant?.mutate.bind(mutant));
  process.stderr.write(`wrote ${values.out} (${target.id}, ${converter})\n`);
  return EXIT.pass;
}

async function models(args: string[]): Promise<number> {
  const [sub, ...names] = args;
  if (sub === 'list') {
    for (const s of listModelSpecs()) {
      const kind = s.kind === 'seeded' && s.nightly ? 'shape-faithful (nightly)' : s.kind;
      process.stdout.write(`${s.name}\t${s.arch}\t${kind}\t${s.description}\n`);
    }
    return EXIT.pass;
  }
  if (sub === 'build') {
    if (names.length === 0) throw new UsageError('models build needs at least one model name');
    for (const name of names) process.stdout.write(`${await buildModel(findModelSpec(name))}\n`);
    return EXIT.pass;
  }
  throw new UsageError(`unknown models subcommand '${sub ?? ''}' (list, build)`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'check':
        return await check(rest);
      case 'convert':
        return convert(rest);
      case 'models':
        return await models(rest);
      case '__engine': {
        // Internal: an engine run in a child process (src/engines/isolated.ts).
        const [engine, dir] = rest;
        if (engine !== 'llama.cpp' || dir === undefined) throw new UsageError('usage: tmgt __engine llama.cpp DIR');
        const { runLlamaCppEngine } = await import('../engines/llama-cpp.js');
        await serveEngineRequest(dir, runLlamaCppEngine);
        return EXIT.pass;
      }
      case 'mutants':
        return await mutantsCommand(rest);
      case 'oracles':
        if (rest[0] !== 'pin') throw new UsageError(`unknown oracles subcommand '${rest[0] ?? ''}' (pin)`);
        return await oraclesPinCommand(rest.slice(1));
      case 'inspect':
        return inspect(rest);
      case 'diff':
        return diff(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? EXIT.harness : EXIT.pass;
      case '--version':
        process.stdout.write(VERSION + '\n');
        return EXIT.pass;
      default:
        throw new UsageError(`unknown command '${command}' (check, convert, mutants, models, oracles, inspect, diff, help)`);
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof HarnessError) process.stderr.write(`tmgt: ${e.message}\n`);
    else if (err.code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`tmgt: ${err.message}\n`);
    else process.stderr.write(`tmgt: internal error: ${err.stack ?? String(e)}\n`);
    return EXIT.harness;
  }
}

void TARGETS;
