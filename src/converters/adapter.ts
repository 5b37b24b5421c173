import { existsSync, mkdirSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { Target, TargetId } from './targets.js';

const TMGT_BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;

export interface ConvertRequest {
  converter: string;
  model: string;
  sourceDir: string;
  target: Target;
  outDir: string;
  timeoutMs: number;
}

/** Formats a converter can write (the readers sniff the file anyway). */
export type ModelFormat = 'gguf' | 'apr' | 'safetensors';

/** Success, failure and skip share one shape family; a converter's own failure is a value (→ F-RUNTIME-001), never a throw. */
export type ConvertResult =
  | { status: 'ok'; artifact: string; format: ModelFormat; durationMs: number; log: string }
  | { status: 'failed'; exitCode: number | undefined; signal: string | undefined; timedOut: boolean; durationMs: number; log: string; reason: string }
  /** The converter cannot run here at all (executable not on PATH, target not offered): not a verdict. */
  | { status: 'skipped'; reason: string };

/**
 * An external converter run from an argv template. Placeholders: `{source}` (the HF checkpoint dir, or the
 * f32 GGUF when `source` is 'reference-gguf-f32'), `{out}` (the file to write), `{type}` (the tool's own
 * name for the target type), `{workdir}` (a scratch dir for this cell).
 */
export interface CommandConverter {
  id: string;
  description?: string;
  argv: string[];
  /** Format of the file the tool writes. */
  format: ModelFormat;
  /** Our targets → the tool's quantization names; targets not listed are skipped for this converter. */
  types: Partial<Record<TargetId | `${string}/${string}`, string>>;
  /** What `{source}` is: the HF checkpoint dir (default), or an f32 GGUF made by the reference converter (llama-quantize). */
  source?: 'hf-dir' | 'reference-gguf-f32';
  /** Tensors the tool promises to keep in high precision (regexes over the artifact's names), for the policy checks. */
  keepsHighPrecision?: string[];
  timeoutMs?: number;
}

const LOG_TAIL_CHARS = 4000;

export function artifactPath(req: Pick<ConvertRequest, 'converter' | 'model' | 'target' | 'outDir'>): string {
  const conv = req.converter.replace(/[^A-Za-z0-9_.-]+/g, '_');
  return join(req.outDir, `${req.model}.${conv}.${req.target.type}.${req.target.format}`);
}

/** Is `cmd` runnable: a path that exists, or a name found on PATH. */
export function findExecutable(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

/**
 * Run one argv as a converter: no shell, its own process group so a timeout kills the whole tree
 * (a converter that forks workers must not leave them running), stdout+stderr tail kept.
 */
export async function runArgv(argv: string[], out: string, timeoutMs: number, format: ModelFormat): Promise<Exclude<ConvertResult, { status: 'skipped' }>> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const start = performance.now();
  const child = execa(cmd, args, { reject: false, all: true, stdin: 'ignore', detached: true, env: { ...process.env, NODE_OPTIONS: '' } });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }, timeoutMs);
  const r = await child;
  clearTimeout(timer);
  const durationMs = performance.now() - start;
  const log = (r.all ?? '').slice(-LOG_TAIL_CHARS);
  if (timedOut || r.failed || r.exitCode !== 0) {
    const reason = timedOut ? `timed out after ${timeoutMs} ms` : r.signal ? `killed by ${r.signal}` : r.exitCode === undefined ? `could not start: ${r.shortMessage}` : `exited with code ${r.exitCode}`;
    return { status: 'failed', exitCode: r.exitCode, signal: r.signal ?? undefined, timedOut, durationMs, log, reason };
  }
  if (!existsSync(out) || statSync(out).size === 0) {
    return { status: 'failed', exitCode: r.exitCode, signal: undefined, timedOut: false, durationMs, log, reason: `exited 0 but wrote no output at ${out}` };
  }
  return { status: 'ok', artifact: out, format, durationMs, log };
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(source|out|type|workdir)\}/g, (_, k: string) => vars[k] ?? '');
}

/** The built-in converters (reference, mutants) run as a real `tmgt convert` subprocess. */
export async function runConverter(req: ConvertRequest): Promise<ConvertResult> {
  mkdirSync(req.outDir, { recursive: true });
  const out = artifactPath(req);
  const argv = [process.execPath, TMGT_BIN, 'convert', '--converter', req.converter, '--model', req.sourceDir, '--target', req.target.id, '--out', out];
  return runArgv(argv, out, req.timeoutMs, req.target.format);
}

/** An external converter through its argv template. `referenceF32Gguf` makes the f32 GGUF when the tool wants one. */
export async function runCommandConverter(
  conv: CommandConverter,
  req: ConvertRequest,
  referenceF32Gguf: () => Promise<ConvertResult>,
): Promise<ConvertResult> {
  const type = conv.types[req.target.id];
  if (type === undefined) return { status: 'skipped', reason: `converter '${conv.id}' offers no ${req.target.id}` };
  if (conv.format !== req.target.format) return { status: 'skipped', reason: `converter '${conv.id}' writes ${conv.format}, not ${req.target.format}` };
  const exe = conv.argv[0];
  if (exe === undefined || !findExecutable(exe)) return { status: 'skipped', reason: `'${exe ?? ''}' is not on PATH` };
  mkdirSync(req.outDir, { recursive: true });
  const out = artifactPath(req);
  const workdir = join(req.outDir, `${req.model}.${conv.id}.${req.target.type}.work`);
  mkdirSync(workdir, { recursive: true });
  let source = req.sourceDir;
  if (conv.source === 'reference-gguf-f32') {
    const f32 = await referenceF32Gguf();
    if (f32.status !== 'ok') return f32;
    source = f32.artifact;
  }
  const vars = { source: isAbsolute(source) ? source : join(process.cwd(), source), out, type, workdir };
  return runArgv(conv.argv.map((a) => fill(a, vars)), out, conv.timeoutMs ?? req.timeoutMs, conv.format);
}
