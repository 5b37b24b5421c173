/**
 * Every converter `tmgt` can run, by id: the built-in ones (the reference, its mutants, llama.cpp's own quantizer)
 * and the command converters of the configuration. One place resolves an id and runs a conversion, so the check
 * matrix, the round trip's re-conversion and `tmgt convert` all convert the same way.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseTarget } from './targets.js';
import { HarnessError, UsageError } from '../errors.js';
import {
  artifactPath,
  runCommandConverter,
  runConverter,
  type CommandConverter,
  type ConvertRequest,
  type ConvertResult,
} from './adapter.js';
import { convertWithLlamaCpp } from './llama-cpp-quantize.js';
import { findMutant, MUTANTS, type Mutant } from './mutants.js';
import { convertCheckpoint } from './reference.js';

/** A resolved converter. */
export type ConverterKind =
  | { kind: 'builtin'; id: string; mutant: Mutant | undefined }
  /** llama.cpp's own quantizer (`llama_model_quantize` of node-llama-cpp's libllama) on the reference f32 GGUF. */
  | { kind: 'llama.cpp'; id: string }
  | { kind: 'command'; id: string; command: CommandConverter };

/** Id of llama.cpp's own quantizer, built in. */
export const LLAMA_CPP_CONVERTER = 'llama.cpp';

/** Resolve a converter id against the built-ins and the configured command converters. */
export function resolveConverter(id: string, commands: readonly CommandConverter[] = []): ConverterKind {
  const command = commands.find((c) => c.id === id);
  if (command) return { kind: 'command', id, command };
  if (id === 'reference') return { kind: 'builtin', id, mutant: undefined };
  if (id === LLAMA_CPP_CONVERTER) return { kind: 'llama.cpp', id };
  const mutant = findMutant(id);
  if (mutant) return { kind: 'builtin', id, mutant };
  const known = ['reference', LLAMA_CPP_CONVERTER, ...commands.map((c) => c.id), ...MUTANTS.map((m) => m.id)];
  throw new UsageError(`unknown converter '${id}' (known: ${known.join(', ')})`);
}

/**
 * A built-in converter, in this process: no process start-up per cell. Its own failure (a throw from the planner or
 * writer) is a failed ConvertResult like a subprocess's non-zero exit.
 */
export function convertInProcess(req: ConvertRequest, mutant: Mutant | undefined, out = artifactPath(req)): ConvertResult {
  const start = performance.now();
  mkdirSync(dirname(out), { recursive: true });
  try {
    convertCheckpoint(req.sourceDir, req.target, out, mutant?.mutate.bind(mutant));
    return { status: 'ok', artifact: out, format: req.target.format, durationMs: performance.now() - start, log: '' };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return {
      status: 'failed',
      exitCode: undefined,
      signal: undefined,
      timedOut: false,
      durationMs: performance.now() - start,
      log: message,
      reason: `threw: ${message}`,
    };
  }
}

export interface ConvertOptions {
  /** Run built-in converters as a real `tmgt convert` subprocess (the command adapter's path) instead of in-process. */
  builtinsInSubprocess?: boolean;
}

/** Convert with a resolved converter: built-ins in-process (or as a subprocess), command converters through the adapter. */
export async function convertWith(conv: ConverterKind, req: ConvertRequest, opts: ConvertOptions = {}): Promise<ConvertResult> {
  if (conv.kind === 'builtin') return opts.builtinsInSubprocess ? runConverter(req) : convertInProcess(req, conv.mutant);
  const referenceF32 = async (): Promise<ConvertResult> =>
    convertInProcess({ ...req, converter: 'reference', target: parseTarget('gguf/f32') }, undefined);
  if (conv.kind === 'llama.cpp') return convertWithLlamaCpp(req, referenceF32);
  return runCommandConverter(conv.command, req, referenceF32);
}

/**
 * The round trip's re-conversion: the cell's own converter on another checkpoint directory, written to `out`. A
 * converter that cannot run there throws (the round trip then cannot be judged: a harness error, not a verdict).
 */
export function reconverter(
  conv: ConverterKind,
  req: ConvertRequest,
  opts: ConvertOptions = {},
): (checkpointDir: string, out: string) => Promise<void> {
  return async (checkpointDir, out) => {
    const r = await convertWith(conv, { ...req, sourceDir: checkpointDir, outDir: dirname(out), model: `${req.model}.roundtrip` }, opts);
    if (r.status !== 'ok')
      throw new HarnessError(
        'E-ROUNDTRIP',
        `re-converting the round-tripped checkpoint with '${conv.id}' ${r.status === 'failed' ? r.reason : `was skipped: ${r.reason}`}`,
      );
    copyFileSync(r.artifact, out);
  };
}
