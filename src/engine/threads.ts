/**
 * Worker threads over matrix rows: a process-wide pool of kernel workers (src/engine/wasm/worker.mjs, plain
 * JavaScript) that run row ranges of one mat-vec on a model's shared WebAssembly memory while the main thread
 * runs its own range. Rows are independent, so the result is bit-identical to one thread's.
 *
 * Synchronisation is Atomics on a small control SharedArrayBuffer (no message per job): the main thread writes
 * each worker's part, bumps the job generation and waits on the finished count. A model's memory is announced
 * to the workers once (a message they drain when their next job starts) and withdrawn when the model is collected.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { HarnessError } from '../errors.js';

/** Kernel functions a worker may run, by index (the ids jobs carry). */
export const THREADED_FNS = [
  'mv_f32',
  'mv_f16',
  'mv_bf16',
  'mv_q8_0',
  'mv_q4_0',
  'mv_q4_1',
  'mv_q5_0',
  'mv_q5_1',
  'mv_q4_k',
  'mv_q6_k',
  'mv_apr_q8',
  'mv_apr_q4',
] as const;
export type ThreadedFn = (typeof THREADED_FNS)[number];

const SLOT_BASE = 4;
const SLOT_WORDS = 16;
/** Most arguments a kernel takes (the integer-dot kernels: 10). */
const MAX_ARGS = SLOT_WORDS - 3;
/** One product never takes this long (a 4 GiB f32 matrix streams in well under it); past it the pool is broken. */
const JOB_TIMEOUT_MS = 60_000;
const WORKER_URL = new URL('./wasm/worker.mjs', import.meta.url);

/** The engine's default thread count: the machine's cores, or TMGT_ENGINE_THREADS. */
export function defaultThreads(): number {
  const env = Number(process.env['TMGT_ENGINE_THREADS']);
  return Number.isInteger(env) && env >= 1 ? env : availableParallelism();
}

/** A worker thread failed or broke the protocol: the engine's own failure (exit 2), not the artifact's. */
export class KernelThreadError extends HarnessError {
  override readonly name = 'KernelThreadError';
  constructor(message: string) {
    super('E-ENGINE-THREADS', message);
  }
}

/** One part of a job: a kernel and its arguments (row range already narrowed). */
export interface JobPart {
  fn: ThreadedFn;
  args: readonly number[];
}

export class KernelPool {
  private readonly ctl: Int32Array;
  private readonly workers: Worker[] = [];
  private nextArena = 1;
  private failure: Error | undefined;

  constructor(
    module: unknown,
    readonly size: number,
  ) {
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (SLOT_BASE + SLOT_WORDS * size)));
    for (let index = 0; index < size; index++) {
      const w = new Worker(fileURLToPath(WORKER_URL), {
        workerData: {
          module,
          ctlBuffer: this.ctl.buffer,
          index,
          fns: THREADED_FNS,
          slotBase: SLOT_BASE,
          slotWords: SLOT_WORDS,
          generation: 0,
        },
      });
      w.on('error', (e) => (this.failure = e));
      // The pool lives as long as the process but must not keep it alive.
      w.unref();
      this.workers.push(w);
    }
  }

  /** Set by a worker's 'error' event, which TypeScript cannot see from inside `run`. */
  private failed(): Error | undefined {
    return this.failure;
  }

  /** Ask the workers to exit (models still attached keep their own reference to this pool and must not use it). */
  close(): void {
    Atomics.store(this.ctl, 0, -1);
    Atomics.notify(this.ctl, 0);
  }

  /** Announce a memory (and where its fp16 table is) to every worker; returns its id for jobs. */
  attach(memory: unknown, table: number): number {
    const id = this.nextArena++;
    for (const w of this.workers) w.postMessage({ attach: id, memory, table });
    return id;
  }

  detach(id: number): void {
    for (const w of this.workers) w.postMessage({ detach: id });
  }

  /**
   * Run parts[0] on the main thread (through `runLocal`) and parts[1..] on workers 0.., then wait for all.
   * parts.length ≤ size + 1.
   */
  run(arena: number, parts: readonly JobPart[], runLocal: (p: JobPart) => void): void {
    if (this.failure !== undefined) throw new KernelThreadError(`a kernel worker failed: ${this.failure.message}`);
    const ctl = this.ctl;
    const n = parts.length - 1;
    if (n > this.size) throw new KernelThreadError(`${n} worker parts for a pool of ${this.size}`);
    for (let i = 0; i < this.size; i++) {
      const at = SLOT_BASE + i * SLOT_WORDS;
      const p = parts[i + 1];
      if (p === undefined) {
        ctl[at + 1] = -1;
        continue;
      }
      if (p.args.length > MAX_ARGS) throw new KernelThreadError(`${p.fn} with ${p.args.length} arguments`);
      ctl[at] = arena;
      ctl[at + 1] = THREADED_FNS.indexOf(p.fn);
      ctl[at + 2] = p.args.length;
      p.args.forEach((a, j) => (ctl[at + 3 + j] = a));
    }
    Atomics.store(ctl, 1, 0);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const local = parts[0];
    if (local !== undefined) runLocal(local);
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    for (let done = Atomics.load(ctl, 1); done < this.size; done = Atomics.load(ctl, 1)) {
      // A worker that died never finishes: bounded waits, then the failure surfaces.
      if (Atomics.wait(ctl, 1, done, 1000) !== 'timed-out') continue;
      const failure = this.failed();
      if (failure !== undefined) throw new KernelThreadError(`a kernel worker failed: ${failure.message}`);
      if (Date.now() > deadline) throw new KernelThreadError(`kernel workers did not finish one product in ${JOB_TIMEOUT_MS} ms`);
    }
    if (Atomics.load(ctl, 2) !== 0) throw new KernelThreadError('a kernel worker ran a job for a memory it was never given');
  }
}

let pool: KernelPool | undefined;

/** The process-wide pool with at least `workers` workers (grown by replacing it; old workers exit). */
export function kernelPool(module: unknown, workers: number): KernelPool {
  if (pool === undefined || pool.size < workers) {
    pool?.close();
    pool = new KernelPool(module, workers);
  }
  return pool;
}
