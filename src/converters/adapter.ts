import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { Target } from './targets.js';

const TMGT_BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;

export interface ConvertRequest {
  converter: string;
  model: string;
  sourceDir: string;
  target: Target;
  outDir: string;
  timeoutMs: number;
}

/** Success and failure share one shape; a converter's own failure is a value (→ F-RUNTIME-001), never a throw. */
export type ConvertResult =
  | { status: 'ok'; artifact: string; format: Target['format']; durationMs: number; log: string }
  | { status: 'failed'; exitCode: number | undefined; signal: string | undefined; timedOut: boolean; durationMs: number; log: string; reason: string };

const LOG_TAIL_CHARS = 4000;

export function artifactPath(req: Pick<ConvertRequest, 'converter' | 'model' | 'target' | 'outDir'>): string {
  const conv = req.converter.replace(/[^A-Za-z0-9_.-]+/g, '_');
  return join(req.outDir, `${req.model}.${conv}.${req.target.type}.${req.target.format}`);
}

/**
 * Run a converter as a real subprocess: `tmgt convert` for the built-in converters (reference and mutants).
 * No shell, a timeout that kills the process tree, stderr tail kept.
 */
export async function runConverter(req: ConvertRequest): Promise<ConvertResult> {
  mkdirSync(req.outDir, { recursive: true });
  const out = artifactPath(req);
  const start = performance.now();
  const r = await execa(process.execPath, [TMGT_BIN, 'convert', '--converter', req.converter, '--model', req.sourceDir, '--target', req.target.id, '--out', out], {
    reject: false,
    timeout: req.timeoutMs,
    killSignal: 'SIGKILL',
    all: true,
    stdin: 'ignore',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const durationMs = performance.now() - start;
  const log = (r.all ?? '').slice(-LOG_TAIL_CHARS);
  if (r.failed || r.exitCode !== 0) {
    const reason = r.timedOut ? `timed out after ${req.timeoutMs} ms` : r.signal ? `killed by ${r.signal}` : `exited with code ${r.exitCode}`;
    return { status: 'failed', exitCode: r.exitCode, signal: r.signal ?? undefined, timedOut: r.timedOut, durationMs, log, reason };
  }
  if (!existsSync(out) || statSync(out).size === 0) {
    return { status: 'failed', exitCode: r.exitCode, signal: undefined, timedOut: false, durationMs, log, reason: `exited 0 but wrote no output at ${out}` };
  }
  return { status: 'ok', artifact: out, format: req.target.format, durationMs, log };
}
