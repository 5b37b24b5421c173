/**
 * Running a cell: plan its claims from the registry, run each over one lazily built cell context, and return
 * exactly the planned claims — a claim whose prerequisite failed is a failing check carrying that prerequisite's
 * verdict, and a check that throws is a failing check with F-RUNTIME-003 (the run then exits 2), never a missing one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { statusOf, type CellResult, type CheckResult, type TensorRow } from '../contracts/results.js';
import type { QuantPolicy } from '../contracts/policy.js';
import type { Target } from '../contracts/targets.js';
import { SUITES, type SuiteName, type Verdict } from '../contracts/verdicts.js';
import { checkRoundtrip } from '../checks/roundtrip.js';
import { checkDriftOrdering, precisionRank } from '../checks/tokens.js';
import { TOLERANCES } from '../checks/tolerances.js';
import type { CommandConverter, ConvertRequest } from '../converters/adapter.js';
import { LLAMA_CPP_KEEPS_HIGH_PRECISION } from '../converters/llama-cpp-quantize.js';
import { referencePolicy } from '../converters/quant-rules.js';
import { ggufToHfCheckpoint } from '../converters/gguf-to-hf.js';
import { convertWith, reconverter, resolveConverter, type ConverterKind } from '../converters/registry.js';
import { runBundledEngine } from '../engines/bundled.js';
import { runEngineIsolated } from '../engines/isolated.js';
import { oracleRecords } from '../oracle/records.js';
import { buildModel } from '../zoo/build.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import { ggufTensorMapping } from '../zoo/gguf-names.js';
import { findModelSpec, MODELS_DIR } from '../zoo/specs.js';
import { HfTokenizer } from '../zoo/tokenizer.js';
import type { Arch } from '../zoo/types.js';
import { planClaims, suiteEntry, claimKey, type Claim } from './claims.js';
import { CellContext, PrerequisiteFailed, type CellProviders, type ReadArtifact, type ReferenceMetrics } from './context.js';

export { planClaims, suitesFor, SUITE_REGISTRY } from './claims.js';
export type { CellResult, CheckResult } from '../contracts/results.js';

/** The zoo's held-out split: text no tiny model was trained on. */
const HELDOUT_PATH = join(MODELS_DIR, 'heldout.txt');

/** Engine name of llama.cpp (the adapter itself runs in a child process: src/engines/isolated.ts). */
const LLAMA_CPP_ENGINE = 'llama.cpp';

export const ALL_SUITES: readonly SuiteName[] = SUITES;

export interface Cell {
  converter: string;
  model: string;
  target: Target;
  engine: 'bundled';
}

export interface RunOptions {
  workDir: string;
  prompts: readonly string[];
  maxNewTokens: number;
  converterTimeoutMs: number;
  suites: readonly SuiteName[];
  /** External converters from tmgt.config.ts, by id. */
  commandConverters?: readonly CommandConverter[];
  /** Built-in converters as a real `tmgt convert` subprocess rather than in-process. */
  builtinsInSubprocess?: boolean;
  /** Held-out text for the perplexity suite (default models/heldout.txt, the zoo's held-out split). */
  perplexityTextPath?: string;
  /** Replace real parts of the cell (tests inject each prerequisite's failure this way). */
  providers?: Partial<CellProviders>;
}

/** The quantization policy a cell's artifact is held to: the reference's (and its mutants'), or what a command converter declares. */
function policyFor(target: Target, conv: ConverterKind): QuantPolicy {
  const reference = referencePolicy(target);
  if (conv.kind === 'llama.cpp') return { ...reference, highPrecision: [...LLAMA_CPP_KEEPS_HIGH_PRECISION] };
  if (conv.kind !== 'command') return reference;
  return { ...reference, highPrecision: conv.command.keepsHighPrecision ?? reference.highPrecision };
}

function realProviders(cell: Cell, conv: ConverterKind, sourceDir: string, opts: RunOptions): CellProviders {
  const req: ConvertRequest = {
    converter: cell.converter,
    model: cell.model,
    sourceDir,
    target: cell.target,
    outDir: join(opts.workDir, 'artifacts'),
    timeoutMs: opts.converterTimeoutMs,
  };
  const convertOpts = { builtinsInSubprocess: opts.builtinsInSubprocess ?? false };
  return {
    convert: () => convertWith(conv, req, convertOpts),
    oracle: (promptIds, maxNewTokens) => oracleRecords(sourceDir, promptIds, maxNewTokens),
    engine: async (request) => runBundledEngine(request),
    llamaCpp: (request) => runEngineIsolated(LLAMA_CPP_ENGINE, request),
    referenceMetrics: () => referenceMetricsOf(cell, opts),
    roundtrip: (artifact) =>
      checkRoundtrip(sourceDir, artifact, opts.workDir, { toHf: ggufToHfCheckpoint, reconvert: reconverter(conv, req, convertOpts) }),
  };
}

/** The suites judged relative to the reference converter (checks/bounds.ts). */
const RELATIVE_SUITES: readonly SuiteName[] = ['logits', 'perplexity', 'tokens', 'cross-runtime'];
const referenceRuns = new Map<string, Promise<ReferenceMetrics>>();

/**
 * The reference converter's prompt-level metrics on the cell's model and target: its own cell, run once per process for
 * each model × target × prompts (a kill matrix or a run of another converter needs each only once).
 */
function referenceMetricsOf(cell: Cell, opts: RunOptions): Promise<ReferenceMetrics> {
  const suites = opts.suites.filter((s) => RELATIVE_SUITES.includes(s));
  const key = JSON.stringify([cell.model, cell.target.id, opts.prompts, opts.maxNewTokens, suites]);
  let run = referenceRuns.get(key);
  if (run === undefined) {
    run = runCell({ ...cell, converter: 'reference' }, { ...opts, suites, providers: {} }).then((r) => {
      const out: ReferenceMetrics = {};
      for (const c of r.checks) {
        if (c.metrics === undefined || c.verdicts.some((v) => v.code.startsWith('F-RUNTIME'))) continue;
        out[c.suite] = { ...out[c.suite], [c.prompt ?? '']: c.metrics };
      }
      return out;
    });
    referenceRuns.set(key, run);
  }
  return run;
}

/** Run one claim; a missing prerequisite or a throw becomes the claim's failing check. */
async function runClaim(ctx: CellContext, claim: Claim): Promise<CheckResult> {
  const base = claim.prompt === undefined ? { suite: claim.suite } : { suite: claim.suite, prompt: claim.prompt.text };
  try {
    const check = await suiteEntry(claim.suite).run(ctx, claim.prompt);
    if (claimKey(check) !== claimKey(claim)) throw new Error(`suite '${claim.suite}' answered for ${claimKey(check)}`);
    return check;
  } catch (e) {
    const verdicts: Verdict[] =
      e instanceof PrerequisiteFailed
        ? e.verdicts
        : [
            {
              code: 'F-RUNTIME-003',
              status: 'fail',
              message: `internal error evaluating ${claim.suite}: ${e instanceof Error ? e.message : String(e)}`,
              evidence: { error: e instanceof Error ? (e.stack ?? e.message) : String(e) },
            },
          ];
    return { ...base, status: 'fail', verdicts };
  }
}

/** Every tensor of the artifact as a report row: its shape, type, bytes, SQNR against its bound, and the codes that name it. */
function tensorRows(read: ReadArtifact, target: Target, checks: readonly CheckResult[], arch: Arch): TensorRow[] {
  const fidelity = checks.find((c) => c.suite === 'fidelity')?.metrics ?? {};
  const bound = TOLERANCES[target.id].weightSqnrMinDb;
  return read.file.tensors.map((t) => {
    const row: TensorRow = {
      name: t.name,
      shape: t.shape,
      dtype: t.dtype,
      bytes: t.byteLength,
      codes: [...new Set(checks.flatMap((c) => c.verdicts.filter((v) => v.tensor === t.name).map((v) => v.code)))],
    };
    const role = read.format === 'gguf' ? t.name : ggufTensorMapping(arch, t.name)?.name;
    if (role !== undefined) row.role = role;
    const sqnr = fidelity[`sqnrDb.${t.name}`];
    if (sqnr !== undefined) {
      row.sqnrDb = sqnr;
      if (Number.isFinite(bound)) row.sqnrBoundDb = bound;
    }
    const zeros = checks.find((c) => c.suite === 'data-quality')?.metrics?.[`zeroFraction.${t.name}`];
    if (zeros !== undefined) row.zeroFraction = zeros;
    return row;
  });
}

/** Run every planned claim of one cell. The converter's or engine's failure becomes verdicts; only harness bugs throw. */
export async function runCell(cell: Cell, opts: RunOptions): Promise<CellResult> {
  const start = performance.now();
  const base = { converter: cell.converter, model: cell.model, target: cell.target.id, engine: cell.engine };
  const conv = resolveConverter(cell.converter, opts.commandConverters);
  const sourceDir = await buildModel(findModelSpec(cell.model));
  const checkpoint = loadCheckpoint(sourceDir);
  const tokenizer = HfTokenizer.fromDir(sourceDir);
  const claims = planClaims(cell.target, opts.prompts, opts.suites);
  const providers = { ...realProviders(cell, conv, sourceDir, opts), ...opts.providers };
  const ctx = new CellContext({
    target: cell.target,
    converter: cell.converter,
    sourceDir,
    checkpoint,
    tokenizer,
    prompts: opts.prompts,
    maxNewTokens: opts.maxNewTokens,
    engineNeeds: { greedy: claims.some((c) => c.suite === 'tokens'), layers: claims.some((c) => c.suite === 'logits') },
    policy: policyFor(cell.target, conv),
    perplexityText: readFileSync(opts.perplexityTextPath ?? HELDOUT_PATH, 'utf8'),
    isReference: cell.converter === 'reference',
    isCalibrated: findModelSpec(cell.model).kind === 'trained',
    providers,
  });
  try {
    const conversion = await ctx.conversion();
    if (conversion.status === 'skipped')
      return { ...base, status: 'skipped', reason: conversion.reason, durationMs: performance.now() - start, checks: [] };
    const checks: CheckResult[] = [];
    for (const claim of claims) checks.push(await runClaim(ctx, claim));
    const result: CellResult = { ...base, status: 'done', durationMs: 0, checks, timingsMs: ctx.timingsMs };
    if (conversion.status === 'ok') {
      result.artifact = conversion.artifact;
      const read = await ctx.file().catch(() => undefined);
      if (read !== undefined) result.tensors = tensorRows(read, cell.target, checks, checkpoint.config.model_type);
    }
    result.durationMs = performance.now() - start;
    // The rest: loading the source, reading the artifact, the checks' own arithmetic.
    const parts = Object.values(ctx.timingsMs).reduce((a, b) => a + b, 0);
    ctx.timingsMs['other'] = Math.max(0, result.durationMs - parts);
    for (const [k, v] of Object.entries(ctx.timingsMs)) ctx.timingsMs[k] = Math.round(v);
    return result;
  } finally {
    ctx.close();
  }
}

/**
 * F-TOKENS-003 across the cells of one converter × model: drift must not grow with precision. Appends one 'tokens' check
 * (prompt "drift ordering") to the highest-precision cell of each group of two or more ranked cells that planned tokens
 * claims, from the mean KL over every teacher-forced position each cell's tokens checks measured. A group in which fewer than two cells could measure it
 * carries the first prerequisite failure instead, so the claim never disappears.
 */
export function addDriftOrdering(results: CellResult[]): void {
  const groups = new Map<string, Extract<CellResult, { status: 'done' }>[]>();
  for (const r of results) {
    if (r.status !== 'done' || precisionRank(r.target) === undefined) continue;
    if (!r.checks.some((c) => c.suite === 'tokens')) continue;
    const key = `${r.converter}\u0000${r.model}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const cells of groups.values()) {
    if (cells.length < 2) continue;
    const rankOf = (r: CellResult): number => precisionRank(r.target) ?? Infinity; // grouped cells are ranked (filtered above)
    const top = [...cells].sort((a, b) => rankOf(a) - rankOf(b))[0];
    if (top === undefined) continue;
    const logits = (r: CellResult) => r.checks.filter((c) => c.suite === 'tokens' && c.prompt !== 'drift ordering');
    const measured = cells.filter((r) => logits(r).every((c) => c.metrics?.['klMean'] !== undefined));
    const prerequisite = cells.flatMap((r) =>
      logits(r)
        .filter((c) => c.metrics?.['klMean'] === undefined)
        .flatMap((c) => c.verdicts),
    )[0];
    if (measured.length < 2 && prerequisite !== undefined) {
      top.checks.push({ suite: 'tokens', prompt: 'drift ordering', status: 'fail', verdicts: [prerequisite] });
      continue;
    }
    const drift = measured.map((r) => {
      const kls = logits(r).map((c) => c.metrics?.['klMean'] ?? 0);
      return { target: r.target, precisionRank: rankOf(r), drift: kls.reduce((a, b) => a + b, 0) / Math.max(1, kls.length) };
    });
    const verdicts = checkDriftOrdering(drift);
    top.checks.push({
      suite: 'tokens',
      prompt: 'drift ordering',
      status: statusOf(verdicts),
      verdicts,
      metrics: Object.fromEntries(drift.map((d) => [d.target, d.drift])),
    });
  }
}
