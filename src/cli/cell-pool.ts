/**
 * Cells in parallel: `tmgt check --jobs N` runs its cells in N worker processes (`tmgt __cells`, the same flags), each
 * with `cores / N` engine threads, so engine threads × concurrent cells never exceed the cores. A worker plans the
 * same cells from the same flags and runs the ones it is sent by index; its results come back over the IPC channel
 * as the JSON the journal keeps. Workers are processes, not threads: each has its own onnxruntime session, its own
 * llama.cpp child and its own memory, so one cell's abort or OOM cannot take the others down (it is a harness error,
 * and `--resume` goes on from the journal).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { CellResult } from '../contracts/results.js';
import { HarnessError } from '../errors.js';

const TMGT_BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;

/** What a worker sends back: a cell's result, or why it could not produce one. */
type WorkerMessage = { index: number; result: CellResult } | { index: number; error: string };

function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && 'index' in m && typeof m.index === 'number' && ('result' in m || 'error' in m);
}

/** Engine threads per worker so that workers × threads ≤ cores. */
export function threadsPerJob(jobs: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / jobs));
}

/**
 * The default `--jobs`: one per core, as many as there are cells, and as many as memory allows — a cell peaks at
 * about 9× its model's f32 weights (measured: 4.8 GB for smollm-135m-shape's 538 MB), and half the machine's memory is
 * the budget, so a 0.5B model runs one cell at a time on 24 GB.
 */
export function defaultJobs(cells: number, largestWeightsBytes: number, totalMemBytes: number, cores = availableParallelism()): number {
  const byMemory = Math.floor(totalMemBytes / 2 / Math.max(1, 9 * largestWeightsBytes));
  return Math.max(1, Math.min(cores, cells, byMemory));
}

interface Worker {
  child: ChildProcess;
  busy: number | undefined;
}

/** A pool of `tmgt __cells` workers for one `tmgt check` run. */
export class CellPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (r: CellResult) => void; reject: (e: Error) => void }>();
  private readonly idle: Worker[] = [];
  private readonly queue: (() => void)[] = [];

  constructor(jobs: number, checkArgs: readonly string[]) {
    const env = { ...process.env, TMGT_ENGINE_THREADS: String(threadsPerJob(jobs)) };
    for (let i = 0; i < jobs; i++) {
      const child = fork(TMGT_BIN, ['__cells', ...checkArgs], { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const w: Worker = { child, busy: undefined };
      child.on('message', (m: unknown) => {
        if (!isWorkerMessage(m)) return;
        const p = this.waiting.get(m.index);
        this.waiting.delete(m.index);
        w.busy = undefined;
        this.release(w);
        if ('result' in m) p?.resolve(m.result);
        else p?.reject(new HarnessError('E-WORKER', `cell ${m.index + 1}: ${m.error}`));
      });
      child.on('exit', (code, signal) => {
        const lost = w.busy;
        w.busy = undefined;
        if (lost === undefined) return;
        const p = this.waiting.get(lost);
        this.waiting.delete(lost);
        p?.reject(
          new HarnessError(
            'E-WORKER',
            `the worker running cell ${lost + 1} exited (${signal ?? `code ${code}`}); finished cells are kept: tmgt check --resume goes on`,
          ),
        );
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /** Run cell `index` (of the plan both sides derive from the same flags) on the next free worker. */
  async run(index: number): Promise<CellResult> {
    const w = await this.acquire();
    w.busy = index;
    return new Promise<CellResult>((resolve, reject) => {
      this.waiting.set(index, { resolve, reject });
      if (!w.child.connected) {
        this.waiting.delete(index);
        w.busy = undefined;
        reject(new HarnessError('E-WORKER', `the worker for cell ${index + 1} is gone`));
        return;
      }
      w.child.send({ index });
    });
  }

  /** Stop every worker (they hold no state a later run needs). */
  close(): void {
    for (const w of this.workers) {
      if (w.child.connected) w.child.disconnect();
      if (w.child.exitCode === null) w.child.kill();
    }
  }

  private acquire(): Promise<Worker> {
    const w = this.idle.pop();
    if (w !== undefined) return Promise.resolve(w);
    return new Promise((resolve) => this.queue.push(() => resolve(this.idle.pop() as Worker))); // released just before
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.queue.shift()?.();
  }
}

/**
 * The worker side (`tmgt __cells <check flags>`): run each cell index the parent sends, reply with its result, and
 * leave ^C to the parent (it stops handing out cells and lets the running ones finish).
 */
export function serveCells(run: (index: number) => Promise<CellResult>): Promise<number> {
  process.on('SIGINT', () => {});
  return new Promise((resolve) => {
    let chain = Promise.resolve();
    process.on('message', (m: unknown) => {
      if (typeof m !== 'object' || m === null || !('index' in m) || typeof m.index !== 'number') return;
      const index = m.index;
      chain = chain.then(async () => {
        let reply: WorkerMessage;
        try {
          reply = { index, result: await run(index) };
        } catch (e) {
          reply = { index, error: e instanceof Error ? e.message : String(e) };
        }
        // The parent may be gone (killed): the finished cell is simply not reported.
        if (process.connected) process.send?.(reply);
      });
    });
    process.on('disconnect', () => resolve(0));
  });
}
