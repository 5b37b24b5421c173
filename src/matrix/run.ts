import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkDataQuality } from '../checks/data-quality.js';
import { checkFile } from '../checks/file.js';
import { checkLayout } from '../checks/layout.js';
import { checkLogits } from '../checks/logits.js';
import { expectedTensors } from '../checks/manifest.js';
import { converterFailed, engineFailed } from '../checks/runtime.js';
import { TOLERANCES } from '../checks/tolerances.js';
import { SUITES, type CheckResult, type SuiteName } from '../checks/codes.js';
import { checkCrossRuntime, crossRuntimeBounds } from '../checks/cross-runtime.js';
import { checkFidelity } from '../checks/fidelity.js';
import { checkMetadata } from '../checks/metadata.js';
import { greedySteps } from '../checks/metrics.js';
import { checkPolicy } from '../checks/policy.js';
import type { QuantPolicy } from '../checks/policy-types.js';
import { checkRoundtrip, roundtripApplies } from '../checks/roundtrip.js';
import { checkDriftOrdering, checkTokens, precisionRank } from '../checks/tokens.js';
import { referencePolicy } from '../converters/quant-rules.js';
import { runEngineIsolated } from '../engines/isolated.js';

/** Engine name of llama.cpp (the adapter itself runs in a child process: src/engines/isolated.ts). */
const LLAMA_CPP_ENGINE = 'llama.cpp';
import { runCommandConverter, runConverter, type CommandConverter, type ConvertResult } from '../converters/adapter.js';
import { parseTarget, type Target, type TargetFormat } from '../converters/targets.js';
import { runBundledEngine } from '../engines/bundled.js';
import { readApr } from '../formats/apr/reader.js';
import { FileByteSource, type ByteSource } from '../formats/byte-source.js';
import { readGguf } from '../formats/gguf/reader.js';
import { readModelFile } from '../formats/read-model.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import type { ModelFile } from '../formats/types.js';
import { oracleRecords } from '../oracle/records.js';
import { buildModel } from '../zoo/build.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import { findModelSpec } from '../zoo/specs.js';
import { HfTokenizer } from '../zoo/tokenizer.js';

export const ALL_SUITES: readonly SuiteName[] = SUITES;

/** Suites judged once per prompt; the others once per cell. */
export const PROMPT_SUITES: readonly SuiteName[] = ['logits', 'tokens', 'cross-runtime'];

/**
 * The suites that apply to a target: round trips need a lossless or half-precision GGUF (the reference can
 * reproduce it byte for byte), and llama.cpp reads GGUF only.
 */
export function suitesFor(target: Target, suites: readonly SuiteName[] = ALL_SUITES): SuiteName[] {
  return suites.filter((s) => {
    if (s === 'roundtrip') return target.format === 'gguf' && roundtripApplies(target.id);
    if (s === 'cross-runtime') return target.format === 'gguf';
    return true;
  });
}

/** Every claim of a cell: one per cell-level suite, one per prompt for the prompt-level suites. */
export function claimsFor(target: Target, prompts: readonly string[], suites: readonly SuiteName[] = ALL_SUITES): { suite: SuiteName; prompt?: string }[] {
  return suitesFor(target, suites).flatMap((suite) => (PROMPT_SUITES.includes(suite) ? prompts.map((prompt) => ({ suite, prompt })) : [{ suite }]));
}

/** The quantization policy a cell's artifact is held to: the reference's (and its mutants'), or what a command converter declares. */
function policyFor(cell: Cell, command: CommandConverter | undefined): QuantPolicy {
  const reference = referencePolicy(cell.target);
  if (!command) return reference;
  return { ...reference, highPrecision: command.keepsHighPrecision ?? reference.highPrecision };
}

export interface Cell {
  converter: string;
  model: string;
  target: Target;
  engine: 'bundled';
}

export interface CellResult {
  converter: string;
  model: string;
  target: string;
  engine: string;
  artifact?: string;
  /** Why the cell did not run (converter not installed, target not offered); it then has no checks. */
  skipped?: string;
  durationMs: number;
  checks: CheckResult[];
}

export interface RunOptions {
  workDir: string;
  prompts: readonly string[];
  maxNewTokens: number;
  converterTimeoutMs: number;
  suites: readonly SuiteName[];
  /** External converters from tmgt.config.ts, by id. */
  commandConverters?: readonly CommandConverter[];
}

const READERS: Record<TargetFormat, (src: ByteSource) => ModelFile> = { gguf: readGguf, apr: readApr, safetensors: readSafetensors };

/**
 * Read an artifact whatever format it is in (the manifest and engine follow the format found). When no
 * format is recognisable, the reader of the format the cell asked for says what is wrong (its magic, its
 * header), which is more useful than "unknown format".
 */
function readArtifact(src: ByteSource, asked: TargetFormat): ModelFile {
  const file = readModelFile(src);
  return file.format === 'unknown' ? READERS[asked](src) : file;
}

/** Run the cell's converter: built-in ones (reference, mutants) as `tmgt convert`, others through the command adapter. */
function convertCell(cell: Cell, sourceDir: string, opts: RunOptions): Promise<ConvertResult> {
  const req = { converter: cell.converter, model: cell.model, sourceDir, target: cell.target, outDir: join(opts.workDir, 'artifacts'), timeoutMs: opts.converterTimeoutMs };
  const command = opts.commandConverters?.find((c) => c.id === cell.converter);
  if (!command) return runConverter(req);
  return runCommandConverter(command, req, () => runConverter({ ...req, converter: 'reference', target: parseTarget('gguf/f32') }));
}

/** Run every claim of one cell. The converter's or engine's failure becomes verdicts; only harness bugs throw. */
export async function runCell(cell: Cell, opts: RunOptions): Promise<CellResult> {
  const start = performance.now();
  const base = { converter: cell.converter, model: cell.model, target: cell.target.id, engine: cell.engine };
  const sourceDir = await buildModel(findModelSpec(cell.model));
  const ckpt = loadCheckpoint(sourceDir);
  const tokenizer = HfTokenizer.fromDir(sourceDir);
  const wants = (s: SuiteName) => opts.suites.includes(s);

  const conv = await convertCell(cell, sourceDir, opts);
  if (conv.status === 'skipped') return { ...base, durationMs: performance.now() - start, skipped: conv.reason, checks: [] };
  if (conv.status === 'failed') {
    return { ...base, durationMs: performance.now() - start, checks: [converterFailed(cell.converter, conv)] };
  }

  const checks: CheckResult[] = [];
  const src = new FileByteSource(conv.artifact);
  try {
    const file = readArtifact(src, cell.target.format);
    if (wants('file')) checks.push(checkFile(file));
    const tol = TOLERANCES[cell.target.id];
    const format = file.format === 'unknown' ? cell.target.format : file.format;
    if (!file.issues.some((i) => i.fatal)) {
      // The manifest follows the format the converter actually wrote (its names), not the one asked for.
      const expected = expectedTensors(ckpt, format);
      if (wants('metadata')) checks.push(checkMetadata(file, { config: ckpt.config, tokenizer, prompts: opts.prompts }));
      if (wants('layout')) {
        const layout = checkLayout(file, expected);
        const policy = checkPolicy(file, policyFor(cell, opts.commandConverters?.find((c) => c.id === cell.converter)), expected, src);
        // A tensor whose element count or byte size is already wrong has no meaningful dtype to hold to the
        // policy: its bytes are not what its header says. One verdict per broken tensor, the first that fires.
        const broken = new Set(layout.verdicts.filter((v) => v.code === 'F-LAYOUT-CONTRACT-001' || v.code === 'F-LAYOUT-CONTRACT-004').map((v) => v.tensor));
        const verdicts = [...layout.verdicts, ...policy.verdicts.filter((v) => v.tensor === undefined || !broken.has(v.tensor))];
        checks.push({ suite: 'layout', status: verdicts.some((v) => v.status === 'fail') ? 'fail' : 'pass', verdicts });
      }
      if (wants('data-quality')) checks.push(checkDataQuality(file, src, expected, tol));
      if (wants('fidelity')) checks.push(checkFidelity(file, src, expected, tol, { config: ckpt.config }));
    } else if (!wants('file')) {
      checks.push(checkFile(file));
    }
    const needsEngine = wants('logits') || wants('tokens') || wants('cross-runtime');
    if (needsEngine) {
      const promptIds = opts.prompts.map((p) => tokenizer.encode(p));
      const oracle = await oracleRecords(sourceDir, promptIds, opts.maxNewTokens);
      const request = {
        artifact: conv.artifact,
        format,
        // safetensors carries no hyperparameters: the engine reads the source checkpoint's.
        configPath: join(sourceDir, 'config.json'),
        sequences: oracle.map((o) => o.ids),
        maxNewTokens: wants('tokens') ? opts.maxNewTokens : 0,
        promptLengths: oracle.map((o) => o.promptIds.length),
        captureLayers: wants('logits'),
      };
      const run = runBundledEngine(request);
      const decode = (ids: number[]) => tokenizer.decode(ids);
      opts.prompts.forEach((prompt, i) => {
        const o = oracle[i];
        if (!o) return;
        if (run.status === 'failed') {
          if (wants('logits')) checks.push(engineFailed(prompt, run.engine, run.message));
          return;
        }
        const got = run.sequences[i];
        if (wants('logits')) {
          const layers = got?.layerOutputs ? { oracle: o.layerOutputs, candidate: got.layerOutputs } : undefined;
          checks.push(checkLogits(prompt, o.logits, got ? got.logits : new Float32Array(0), o.vocabSize, tol, layers));
        }
        if (wants('tokens')) {
          const steps = greedySteps(o.logits, o.vocabSize, o.promptIds.length, o.greedyIds.length);
          checks.push(checkTokens(prompt, o.greedyIds, got?.greedyIds ?? [], tol, decode, steps));
        }
      });
      // Cross-runtime: the same GGUF through llama.cpp (node-llama-cpp), teacher-forced on the same ids.
      if (wants('cross-runtime') && format === 'gguf' && run.status === 'ok') {
        const cpp = await runEngineIsolated(LLAMA_CPP_ENGINE, { ...request, maxNewTokens: 0, captureLayers: false });
        const bounds = crossRuntimeBounds(ckpt.config.model_type, cell.target.id);
        opts.prompts.forEach((prompt, i) => {
          const ours = run.sequences[i];
          const theirs = cpp.status === 'ok' ? cpp.sequences[i] : undefined;
          if (!ours) return;
          if (cpp.status === 'failed' || !theirs) {
            checks.push({ ...engineFailed(prompt, cpp.engine, cpp.status === 'failed' ? cpp.message : 'no result'), suite: 'cross-runtime' });
            return;
          }
          checks.push(checkCrossRuntime(prompt, ours.logits, theirs.logits, ours.vocabSize, bounds));
        });
      }
    }
    if (wants('roundtrip') && format === 'gguf' && roundtripApplies(cell.target.id) && !file.issues.some((i) => i.fatal)) {
      checks.push(await checkRoundtrip(sourceDir, conv.artifact, opts.workDir));
    }
  } finally {
    src.close();
  }
  return { ...base, artifact: conv.artifact, durationMs: performance.now() - start, checks };
}

/**
 * F-TOKENS-003 across the cells of one converter × model: drift must not grow with precision. Appends one
 * 'tokens' check (prompt "drift ordering") to the highest-precision cell of each group of two or more ranked
 * cells, from the greedy mismatches each cell's tokens checks counted.
 */
export function addDriftOrdering(results: CellResult[]): void {
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    if (r.skipped !== undefined || precisionRank(r.target) === undefined) continue;
    if (!r.checks.some((c) => c.suite === 'tokens')) continue;
    const key = `${r.converter}\u0000${r.model}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const cells of groups.values()) {
    if (cells.length < 2) continue;
    const drift = cells.map((r) => ({
      target: r.target,
      precisionRank: precisionRank(r.target) as number,
      mismatches: r.checks.filter((c) => c.suite === 'tokens').reduce((a, c) => a + (c.metrics?.['mismatches'] ?? 0), 0),
    }));
    const verdicts = checkDriftOrdering(drift);
    const top = [...cells].sort((a, b) => (precisionRank(a.target) as number) - (precisionRank(b.target) as number))[0] as CellResult;
    top.checks.push({ suite: 'tokens', prompt: 'drift ordering', status: verdicts.length ? 'fail' : 'pass', verdicts, metrics: Object.fromEntries(drift.map((d) => [d.target, d.mismatches])) });
  }
}
