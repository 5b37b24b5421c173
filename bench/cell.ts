/**
 * Whole-run figures for `make bench`: one smollm-135m-shape cell (all suites, warm caches) — wall time, peak RSS and
 * where its time went — and `tmgt check` on the tiny zoo cold (a fresh cache: models and oracles rebuilt) and warm.
 * Each is a real `tmgt check` subprocess; peak RSS is the largest VmHWM of the process tree (the harness, its --jobs
 * workers and the llama.cpp child), sampled from /proc every 100 ms.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { TRAINED_MODELS } from '../src/config.js';

const BIN = new URL('../bin/tmgt.js', import.meta.url).pathname;

/** The bench report's `cell` entry. */
export interface CellBench {
  model: string;
  target: string;
  wallSeconds: number;
  /** Largest resident set of any one process of the run (harness or llama.cpp child), MiB. */
  peakRssMiB: number;
  timingsMs: Record<string, number>;
  checks: number;
  passed: number;
}

/** The bench report's `makeCheckSeconds` entry: the tiny zoo, every target, all suites. */
export interface MakeCheckBench {
  cold: number;
  warm: number;
  models: string[];
  jobs: string;
}

/** Largest VmHWM (KiB) of a process and its descendants now. */
function treeHwmKiB(root: number): number {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // gone meanwhile
    }
  }
  let best = 0;
  const stack = [root];
  for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
    try {
      best = Math.max(best, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0));
    } catch {
      // gone meanwhile
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return best;
}

/** Run `tmgt check ARGS`, timing it and sampling its tree's peak RSS. */
async function timedCheck(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; peakKiB: number; reportDir: string }> {
  const reportDir = mkdtempSync(join(tmpdir(), 'tmgt-bench-check-'));
  const t0 = performance.now();
  const child = execa(process.execPath, [BIN, 'check', ...args, '--report-dir', reportDir], {
    reject: false,
    stdin: 'ignore',
    env: { ...process.env, ...env },
  });
  let peakKiB = 0;
  const timer = setInterval(() => {
    if (child.pid !== undefined) peakKiB = Math.max(peakKiB, treeHwmKiB(child.pid));
  }, 100);
  const r = await child;
  clearInterval(timer);
  if (r.exitCode !== 0) throw new Error(`tmgt check ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.slice(-2000)}`);
  return { seconds: (performance.now() - t0) / 1000, peakKiB, reportDir };
}

/** One cell, all suites, warm (run once first to fill the caches). */
export async function benchCell(model = 'smollm-135m-shape', target = 'gguf/q8_0'): Promise<CellBench> {
  const args = ['--models', model, '--targets', target, '--jobs', '1'];
  await timedCheck(args);
  const { seconds, peakKiB, reportDir } = await timedCheck(args);
  // parity.json as tmgt check wrote it (validated against its schema there)
  const report = JSON.parse(readFileSync(join(reportDir, 'parity.json'), 'utf8')) as {
    summary: { checks: number; passed: number };
    cells: { timingsMs?: Record<string, number> }[];
  };
  rmSync(reportDir, { recursive: true, force: true });
  return {
    model,
    target,
    wallSeconds: seconds,
    peakRssMiB: peakKiB / 1024,
    timingsMs: report.cells[0]?.timingsMs ?? {},
    checks: report.summary.checks,
    passed: report.summary.passed,
  };
}

/** `tmgt check` over the trained tiny zoo × every target: cold (an empty cache) then warm. */
export async function benchMakeCheck(): Promise<MakeCheckBench> {
  const models = [...TRAINED_MODELS];
  const cache = mkdtempSync(join(tmpdir(), 'tmgt-bench-cache-'));
  try {
    const env = { TMGT_CACHE_DIR: cache };
    const cold = await timedCheck(['--models', models.join(',')], env);
    const warm = await timedCheck(['--models', models.join(',')], env);
    return { cold: cold.seconds, warm: warm.seconds, models, jobs: 'auto' };
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}
