import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, type Stats } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { HarnessError } from '../errors.js';
import type { ModelFormat, Target, TargetId } from '../contracts/targets.js';

export type { ModelFormat };

const TMGT_BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;

export interface ConvertRequest {
  converter: string;
  model: string;
  sourceDir: string;
  target: Target;
  outDir: string;
  timeoutMs: number;
  /** Largest artifact accepted (default DEFAULT_MAX_OUTPUT_BYTES); a bigger one is a converter failure, never read. */
  maxOutputBytes?: number;
}

/** Success, failure and skip share one shape family; a converter's own failure is a value (→ F-RUNTIME-001), never a throw. */
export type ConvertResult =
  | { status: 'ok'; artifact: string; format: ModelFormat; durationMs: number; log: string }
  | {
      status: 'failed';
      exitCode: number | undefined;
      signal: string | undefined;
      timedOut: boolean;
      durationMs: number;
      log: string;
      reason: string;
    }
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
  /** Largest file the tool may write (default DEFAULT_MAX_OUTPUT_BYTES). */
  maxOutputBytes?: number;
}

const LOG_TAIL_CHARS = 4000;
/**
 * Default cap on an artifact's size, checked before anything reads it: 32 GiB holds an f32 7B model, 16×
 * the largest shape-faithful zoo model. The readers never load a file whole, but the checks read every
 * tensor, and a converter that writes without end must not get that far.
 */
export const DEFAULT_MAX_OUTPUT_BYTES = 32 * 2 ** 30;
/** execa keeps stdout+stderr in memory: a converter that prints without end is stopped here (we keep only the tail). */
const MAX_LOG_BYTES = 16 * 2 ** 20;

/** A converter id or model name that could steer a path out of the work directory: refused before anything runs. */
export class ConfinementError extends HarnessError {
  override readonly name = 'ConfinementError';
  constructor(
    readonly what: string,
    readonly value: string,
    reason: string,
  ) {
    super('E-CONFINEMENT', `${what} ${JSON.stringify(value)} ${reason}`);
  }
}

/**
 * Refuse a converter id or model name that is empty or absolute, or holds `..`, a path separator or a NUL:
 * both become parts of file names under the work directory.
 */
export function assertPathSafeName(what: 'converter id' | 'model name', value: string): void {
  const reason =
    value === ''
      ? 'is empty'
      : isAbsolute(value)
        ? 'is an absolute path'
        : value.includes('..')
          ? "contains '..'"
          : /[/\\]/.test(value)
            ? 'contains a path separator'
            : value.includes('\0')
              ? 'contains a NUL byte'
              : undefined;
  if (reason !== undefined) throw new ConfinementError(what, value, `${reason}; it would become part of a path under the work directory`);
}

/** `path`, if it lies strictly inside `dir`; a ConfinementError otherwise. */
function insideDir(dir: string, path: string, what: string): string {
  const rel = relative(resolve(dir), resolve(path));
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new ConfinementError(what, path, `is not inside the work directory ${dir}`);
  }
  return path;
}

/** Where a converter must write its artifact: always a file directly inside `outDir` (names checked first). */
export function artifactPath(req: Pick<ConvertRequest, 'converter' | 'model' | 'target' | 'outDir'>): string {
  assertPathSafeName('converter id', req.converter);
  assertPathSafeName('model name', req.model);
  const conv = req.converter.replace(/[^A-Za-z0-9_.-]+/g, '_');
  return insideDir(req.outDir, join(req.outDir, `${req.model}.${conv}.${req.target.type}.${req.target.format}`), '{out}');
}

/** Is `cmd` runnable: a path that exists, or a name found on PATH. */
export function findExecutable(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

/** Limits on one converter run beyond its timeout. */
export interface RunLimits {
  /** Largest artifact accepted (default DEFAULT_MAX_OUTPUT_BYTES). */
  maxOutputBytes?: number;
  /** Directories besides {out}'s where a converter that missed {out} may have written (named in the failure). */
  scratchDirs?: string[];
}

/** Members of process group `pgid` still alive (Linux /proc; elsewhere one probe of the group). */
function groupMembers(pgid: number): number[] {
  if (existsSync('/proc/self/stat')) {
    const members: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // Field 5 is pgrp; the command name (field 2) may hold spaces and parentheses, so split after its ')'.
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
      } catch {
        // The process exited while we looked.
      }
    }
    return members;
  }
  try {
    process.kill(-pgid, 0);
    return [-1];
  } catch {
    return [];
  }
}

/** SIGKILL whatever is left of the converter's process group; the pids that were still there. */
function killGroup(pgid: number): number[] {
  const members = groupMembers(pgid);
  if (members.length === 0) return [];
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Gone between the look and the kill.
  }
  return members;
}

/**
 * What a converter that missed {out} wrote instead, since `sinceMs`: files beside {out} whose names start
 * with its name (`{out}.tmp`, `{out}.partial`; other cells write into the same directory), and any file in
 * its own scratch dirs.
 */
function strayFiles(out: string, scratchDirs: readonly string[], sinceMs: number): string[] {
  const found: string[] = [];
  for (const dir of [dirname(out), ...scratchDirs]) {
    const mine = dir === dirname(out) ? (path: string) => path.startsWith(out) : () => true;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      try {
        const st = lstatSync(path);
        // Some file systems keep mtimes to the second: allow one second of slack.
        if (path !== out && mine(path) && st.isFile() && st.mtimeMs >= sinceMs - 1000) found.push(path);
      } catch {
        // Removed while we looked.
      }
    }
  }
  return found;
}

function fileKind(st: Stats): string {
  return st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : 'a special file';
}

/**
 * Run one argv as a converter, and judge what it left behind. No shell: each argv entry reaches the tool
 * as one argument, whatever it holds. Its own process group, so a timeout kills the whole tree; after it
 * exits, any process it left in that group is killed too (and fails the run: it may still be writing
 * {out}). A stale {out} is removed first, so "wrote nothing" cannot pass on an old file. The output must
 * be a regular file (not a symlink, FIFO or directory), non-empty and within the size cap, all checked
 * with one lstat before anything reads it. Only the stdout+stderr tail is kept.
 */
export async function runArgv(
  argv: string[],
  out: string,
  timeoutMs: number,
  format: ModelFormat,
  limits: RunLimits = {},
): Promise<Exclude<ConvertResult, { status: 'skipped' }>> {
  // Every caller builds argv from a non-empty template or a literal command line.
  const [cmd, ...args] = argv as [string, ...string[]];
  const maxOutputBytes = limits.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  try {
    rmSync(out, { force: true });
  } catch {
    // Not a file (a directory left there): the lstat below reports what {out} is after the run.
  }
  const start = performance.now();
  const startedAtMs = Date.now();
  const child = execa(cmd, args, {
    reject: false,
    all: true,
    stdin: 'ignore',
    detached: true,
    maxBuffer: MAX_LOG_BYTES,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
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
  const leftBehind = child.pid === undefined ? [] : killGroup(child.pid);
  const durationMs = performance.now() - start;
  const log = (r.all ?? '').slice(-LOG_TAIL_CHARS);
  const failed = (reason: string): Exclude<ConvertResult, { status: 'ok' | 'skipped' }> => ({
    status: 'failed',
    exitCode: r.exitCode,
    signal: r.signal ?? undefined,
    timedOut,
    durationMs,
    log,
    reason,
  });
  if (timedOut || r.failed || r.exitCode !== 0) {
    if (timedOut) return failed(`timed out after ${timeoutMs} ms (its process group was killed)`);
    if (r.isMaxBuffer) return failed(`printed more than ${MAX_LOG_BYTES} bytes of log and was stopped`);
    if (r.signal) return failed(`killed by ${r.signal}`);
    return failed(r.exitCode === undefined ? `could not start: ${r.shortMessage}` : `exited with code ${r.exitCode}`);
  }
  if (leftBehind.length > 0) {
    const pids = leftBehind.join(', ');
    return failed(
      `exited 0 but left ${leftBehind.length} process(es) running in its process group (pid ${pids}); killed them: its output may be incomplete`,
    );
  }
  let st: Stats | undefined;
  try {
    st = lstatSync(out);
  } catch {
    st = undefined;
  }
  if (st === undefined) {
    const stray = strayFiles(out, limits.scratchDirs ?? [], startedAtMs);
    const instead = stray.length > 0 ? `; it wrote ${stray.slice(0, 3).join(', ')}${stray.length > 3 ? ', …' : ''} instead` : '';
    return failed(`exited 0 but wrote no output at ${out}${instead}`);
  }
  if (!st.isFile()) return failed(`exited 0 but left ${fileKind(st)} at ${out}, not a regular file`);
  if (st.size === 0) return failed(`exited 0 but wrote an empty file (0 bytes) at ${out}`);
  if (st.size > maxOutputBytes) return failed(`wrote ${st.size} bytes at ${out}, over the ${maxOutputBytes}-byte output cap: not read`);
  return { status: 'ok', artifact: out, format, durationMs, log };
}

/**
 * One argv entry with its placeholders replaced in a single pass: a value is never re-expanded (a source
 * path containing `{out}` stays as it is) and never split — the entry stays one argument.
 */
function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(source|out|type|workdir)\}/g, (_, k: string) => vars[k] ?? '');
}

/** The built-in converters (reference, mutants) run as a real `tmgt convert` subprocess. */
export async function runConverter(req: ConvertRequest): Promise<ConvertResult> {
  const out = artifactPath(req);
  mkdirSync(req.outDir, { recursive: true });
  const argv = [
    process.execPath,
    TMGT_BIN,
    'convert',
    '--converter',
    req.converter,
    '--model',
    req.sourceDir,
    '--target',
    req.target.id,
    '--out',
    out,
  ];
  return runArgv(argv, out, req.timeoutMs, req.target.format, { maxOutputBytes: req.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES });
}

/** An external converter through its argv template. `referenceF32Gguf` makes the f32 GGUF when the tool wants one. */
export async function runCommandConverter(
  conv: CommandConverter,
  req: ConvertRequest,
  referenceF32Gguf: () => Promise<ConvertResult>,
): Promise<ConvertResult> {
  // Before anything else, even a skip: a config that could write outside the work directory is a usage error.
  const out = artifactPath(req);
  const type = conv.types[req.target.id];
  if (type === undefined) return { status: 'skipped', reason: `converter '${conv.id}' offers no ${req.target.id}` };
  if (conv.format !== req.target.format)
    return { status: 'skipped', reason: `converter '${conv.id}' writes ${conv.format}, not ${req.target.format}` };
  const exe = conv.argv[0];
  if (exe === undefined || !findExecutable(exe)) return { status: 'skipped', reason: `'${exe ?? ''}' is not on PATH` };
  mkdirSync(req.outDir, { recursive: true });
  const workdir = insideDir(req.outDir, join(req.outDir, `${req.model}.${conv.id}.${req.target.type}.work`), '{workdir}');
  mkdirSync(workdir, { recursive: true });
  let source = req.sourceDir;
  if (conv.source === 'reference-gguf-f32') {
    const f32 = await referenceF32Gguf();
    if (f32.status !== 'ok') return f32;
    source = f32.artifact;
  }
  const vars = { source: isAbsolute(source) ? source : join(process.cwd(), source), out, type, workdir };
  const limits = { maxOutputBytes: conv.maxOutputBytes ?? req.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES, scratchDirs: [workdir] };
  return runArgv(
    conv.argv.map((a) => fill(a, vars)),
    out,
    conv.timeoutMs ?? req.timeoutMs,
    conv.format,
    limits,
  );
}
