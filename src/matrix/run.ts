import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkDataQuality } from '../checks/data-quality.js';
import { checkFile } from '../checks/file.js';
import { checkLayout } from '../checks/layout.js';
import { checkLogits } from '../checks/logits.js';
import { expectedGgufTensors } from '../checks/manifest.js';
import { converterFailed, engineFailed } from '../checks/runtime.js';
import { TOLERANCES } from '../checks/tolerances.js';
import type { CheckResult, SuiteName } from '../checks/codes.js';
import { runCommandConverter, runConverter, type CommandConverter, type ConvertResult } from '../converters/adapter.js';
import { parseTarget, type Target } from '../converters/targets.js';
import { runBundledEngine } from '../engines/bundled.js';
import { FileByteSource } from '../formats/byte-source.js';
import { readGguf } from '../formats/gguf/reader.js';
import { oracleRecords } from '../oracle/records.js';
import { buildModel } from '../zoo/build.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import { findModelSpec } from '../zoo/specs.js';
import { HfTokenizer } from '../zoo/tokenizer.js';

export const ALL_SUITES = ['file', 'layout', 'data-quality', 'logits'] as const satisfies readonly SuiteName[];

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
    const file = readGguf(src);
    if (wants('file')) checks.push(checkFile(file));
    const tol = TOLERANCES[cell.target.id];
    if (!file.issues.some((i) => i.fatal)) {
      const expected = expectedGgufTensors(ckpt);
      if (wants('layout')) checks.push(checkLayout(file, expected));
      if (wants('data-quality')) checks.push(checkDataQuality(file, src, expected, tol));
    } else if (!wants('file')) {
      checks.push(checkFile(file));
    }
    if (wants('logits')) {
      const promptIds = opts.prompts.map((p) => tokenizer.encode(p));
      const oracle = await oracleRecords(sourceDir, promptIds, opts.maxNewTokens);
      const run = runBundledEngine({ artifact: conv.artifact, format: 'gguf', sequences: oracle.map((o) => o.ids), maxNewTokens: 0, promptLengths: oracle.map((o) => o.promptIds.length), captureLayers: false });
      opts.prompts.forEach((prompt, i) => {
        const o = oracle[i];
        if (!o) return;
        if (run.status === 'failed') {
          checks.push(engineFailed(prompt, run.engine, run.message));
          return;
        }
        const got = run.sequences[i];
        checks.push(checkLogits(prompt, o.logits, got ? got.logits : new Float32Array(0), o.vocabSize, tol));
      });
    }
  } finally {
    src.close();
  }
  return { ...base, artifact: conv.artifact, durationMs: performance.now() - start, checks };
}
