/**
 * `make fuzz`: every reader and the sniffing dispatcher over FUZZ_INPUTS (default 100,000) generated
 * malformed inputs each, in child processes whose memory is capped (`--max-old-space-size` inside, an RSS
 * watchdog outside) and whose every read is time-bounded: a read still running after FUZZ_HANG_MS is a
 * hang, the child is killed and a new one resumes after that input. Prints exactly one line per target,
 *
 *   fuzz <target>: inputs=N crashes=C hangs=H peak_rss_mb=M codes=K
 *
 * (K = distinct F-FILE-* codes seen), writes interesting inputs to test/fuzz-corpus/, and exits 1 on any
 * crash or hang (2 if the fuzzer itself failed).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FUZZ_TARGETS, type FuzzTarget } from './contract.js';
import { CORPUS_DIR, TargetFindings, writeCorpus } from './corpus.js';
import { inputAt, SEEDS } from './generate.js';
import { GENERATING, type ChunkReport, type Crash } from './protocol.js';

/** Limits, each with its reason. */
const LIMITS = {
  /** The issue's bar: ≥ 100,000 inputs per reader. */
  inputs: Number(process.env['FUZZ_INPUTS'] ?? 100_000),
  /** The reads here take well under 10 ms; 2 s leaves room for a shared, loaded machine and still catches any loop. */
  hangMs: Number(process.env['FUZZ_HANG_MS'] ?? 2_000),
  /** V8 heap cap of each child: a reader that allocates by a declared count hits it long before the machine does. */
  heapMb: 256,
  /** RSS cap (array buffers live outside the V8 heap): the parent kills a child above it. Baseline with tsx ≈ 150 MB. */
  rssMb: Number(process.env['FUZZ_RSS_MB'] ?? 768),
  /** Children at once: the machine has 2 cores. */
  jobs: Number(process.env['FUZZ_JOBS'] ?? 2),
  /** How often the watchdog looks at the child. */
  pollMs: 25,
  /** Time allowed to generate one chunk of inputs (not a read): only a fuzzer bug takes this long. */
  generateMs: 120_000,
} as const;

/** FUZZ_TARGETS=gguf,apr narrows the run; FUZZ_CORPUS_DIR writes the corpus elsewhere (the driver's own test). */
const TARGETS = (process.env['FUZZ_TARGETS'] ?? FUZZ_TARGETS.join(','))
  .split(',')
  .filter((t): t is FuzzTarget => FUZZ_TARGETS.some((k) => k === t));
const CORPUS = process.env['FUZZ_CORPUS_DIR'] ?? CORPUS_DIR;
/** FUZZ_SEED=n shifts every target's seed: other inputs than the committed corpus came from (for hunting). */
const seedOf = (t: FuzzTarget): number => (SEEDS[t] + Number(process.env['FUZZ_SEED'] ?? 0)) | 0;

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const TSX = import.meta.resolve('tsx/esm');

/** VmRSS of a live process, MiB (Linux /proc; 0 elsewhere, where the child's own maxRSS still counts). */
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

interface ChildEnd {
  /** Index of the first input not yet accounted for by a chunk report. */
  resumeAt: number;
  /** The input the child was killed on, and why. */
  killed?: { index: number; kind: 'hang' | 'crash'; message: string };
}

/** Run one child over [from, to) minus `skip`; fold its chunk reports into `f`. */
function runChild(target: FuzzTarget, from: number, to: number, skip: readonly number[], f: TargetFindings): Promise<ChildEnd> {
  return new Promise((resolve, reject) => {
    const args = [
      `--max-old-space-size=${LIMITS.heapMb}`,
      '--import',
      TSX,
      CHILD,
      target,
      String(seedOf(target)),
      String(from),
      String(to),
      skip.join(','),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    let current = GENERATING;
    let since = Date.now();
    let resumeAt = from;
    let killed: ChildEnd['killed'];
    let progressTail = Buffer.alloc(0);
    child.stdio[3]?.on('data', (chunk: Buffer) => {
      const all = Buffer.concat([progressTail, chunk]);
      const whole = all.length - (all.length % 4);
      if (whole > 0) {
        current = all.readUInt32LE(whole - 4);
        since = Date.now();
      }
      progressTail = all.subarray(whole);
    });
    let lineTail = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      const lines = (lineTail + text).split('\n');
      lineTail = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        // Every stdout line of fuzz/child.ts is one JSON.stringify(ChunkReport).
        const r = JSON.parse(line) as ChunkReport;
        f.merge(r);
        resumeAt = r.next;
      }
    });
    const watchdog = setInterval(() => {
      if (child.pid === undefined || killed !== undefined) return;
      const rss = rssMb(child.pid);
      f.peakRssMb = Math.max(f.peakRssMb, rss);
      const elapsed = Date.now() - since;
      if (rss > LIMITS.rssMb && current !== GENERATING) {
        killed = { index: current, kind: 'crash', message: `RSS ${rss.toFixed(0)} MB over the ${LIMITS.rssMb} MB cap` };
      } else if (current !== GENERATING && elapsed > LIMITS.hangMs) {
        killed = { index: current, kind: 'hang', message: `read still running after ${elapsed} ms (bound ${LIMITS.hangMs} ms)` };
      } else if (current === GENERATING && elapsed > LIMITS.generateMs) {
        clearInterval(watchdog);
        child.kill('SIGKILL');
        reject(new Error(`fuzz ${target}: generating inputs after ${from} took over ${LIMITS.generateMs} ms`));
        return;
      }
      if (killed !== undefined) child.kill('SIGKILL');
    }, LIMITS.pollMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      if (killed === undefined && (code !== 0 || signal !== null)) {
        // Died on its own (V8 heap limit, native crash): blame the input it was reading.
        if (current === GENERATING) {
          reject(new Error(`fuzz ${target}: child exited with ${signal ?? code} while generating inputs after ${resumeAt}`));
          return;
        }
        killed = {
          index: current,
          kind: 'crash',
          message: `child died with ${signal ?? `exit code ${code}`} (heap cap ${LIMITS.heapMb} MB)`,
        };
      }
      resolve(killed === undefined ? { resumeAt } : { resumeAt, killed });
    });
  });
}

async function fuzzTarget(target: FuzzTarget, f: TargetFindings): Promise<void> {
  const skip: number[] = [];
  let from = 0;
  for (;;) {
    const end = await runChild(target, from, LIMITS.inputs, skip, f);
    if (end.killed === undefined) break;
    const { index, kind, message } = end.killed;
    const b64 = Buffer.from(inputAt(target, seedOf(target), index)).toString('base64');
    const found: Crash = { index, message, b64 };
    if (kind === 'hang') f.hangs.push(found);
    else f.crashes.push(found);
    f.inputs++;
    skip.push(index);
    from = end.resumeAt;
  }
}

/** The exact line the issue asks for. */
export function fuzzLine(target: FuzzTarget, f: TargetFindings): string {
  const counts = `inputs=${f.inputs} crashes=${f.crashes.length} hangs=${f.hangs.length}`;
  return `fuzz ${target}: ${counts} peak_rss_mb=${Math.round(f.peakRssMb)} codes=${f.codes.size}`;
}

async function main(): Promise<number> {
  const queue = [...TARGETS];
  const findings = new Map<FuzzTarget, TargetFindings>();
  const worker = async (): Promise<void> => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      const f = new TargetFindings(t);
      findings.set(t, f);
      await fuzzTarget(t, f);
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Math.max(1, LIMITS.jobs) }, worker));
  const written = writeCorpus([...findings.values()], CORPUS);
  for (const t of TARGETS) {
    const f = findings.get(t);
    if (f !== undefined) console.log(fuzzLine(t, f));
  }
  for (const f of findings.values()) {
    const slowest = f.slowest === undefined ? '' : `, slowest read ${f.slowest.ms.toFixed(1)} ms`;
    const alloc = f.largestAlloc === undefined ? '' : `, largest allocation ${(f.largestAlloc.bytes / 2 ** 20).toFixed(1)} MiB`;
    console.error(`  ${f.target}: ${f.signatureCounts.size} distinct issue signatures${slowest}${alloc}`);
  }
  const failed = [...findings.values()].filter((f) => f.crashes.length + f.hangs.length > 0);
  for (const f of failed) {
    for (const c of [...f.crashes, ...f.hangs].slice(0, 5)) console.error(`  ${f.target} input ${c.index}: ${c.message}`);
  }
  console.error(`fuzz: ${((Date.now() - t0) / 1000).toFixed(0)} s; corpus: ${written} files in ${CORPUS}`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 2;
  },
);
