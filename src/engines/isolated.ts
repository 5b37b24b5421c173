/**
 * Engines that load native code (llama.cpp) run in a child process: ggml aborts the whole process on some
 * malformed files (measured: an F16 norm weight → `binary_op: unsupported types … GGML_ABORT`), and a
 * converter's output is hostile until checked. A crash, a signal or a hang becomes a failed EngineResult
 * with the child's last words; the harness goes on.
 *
 * One long-lived child per engine and run (`EngineHost`): the child loads the native backend once and serves
 * requests over Node's IPC channel (advanced serialization, so logits travel as Float32Arrays, not files). Requests
 * are served one at a time, in order. When the child dies (abort, signal, exit) or a request times out (the child is
 * killed), the request in flight fails with how it died and the child's last output lines; the next request starts a
 * fresh child. An idle child does not keep the parent alive, and exits when the parent goes.
 *
 * The older one-shot protocol (`tmgt __engine <name> <dir>`: `<dir>/request.json` in, `<dir>/result.json` and one
 * `<dir>/logits-<i>.f32` per sequence out) is still served by `serveEngineRequest`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EngineRequest, EngineResult } from './types.js';

/** The engines a child can serve, loaded lazily in the child only (the parent never loads native code). */
const CHILD_ENGINES = {
  'llama.cpp': async (): Promise<(req: EngineRequest) => Promise<EngineResult>> => (await import('./llama-cpp.js')).runLlamaCppEngine,
} as const;
type ChildEngine = keyof typeof CHILD_ENGINES;

/** Per-request time limit when the caller gives none (the old child-per-request default). */
export const DEFAULT_ENGINE_TIMEOUT_MS = 300_000;
/** Lines of the child's stdout/stderr kept for a failure message. */
const OUTPUT_TAIL_LINES = 6;

interface WireSequence {
  ids: number[];
  vocabSize: number;
  greedyIds: number[];
}

type WireResult =
  | { status: 'ok'; engine: string; sequences: WireSequence[]; durationMs: number }
  | { status: 'failed'; engine: string; message: string; durationMs: number };

/** Child side of the one-shot protocol: run the engine on the request in `dir` and write its result there. */
export async function serveEngineRequest(dir: string, run: (req: EngineRequest) => Promise<EngineResult>): Promise<void> {
  // the protocol's request file: the caller of `tmgt __engine` writes an EngineRequest there; the engine checks its fields
  const req = JSON.parse(readFileSync(join(dir, 'request.json'), 'utf8')) as EngineRequest;
  const result = await run(req);
  if (result.status === 'ok') {
    result.sequences.forEach((s, i) =>
      writeFileSync(join(dir, `logits-${i}.f32`), new Uint8Array(s.logits.buffer, s.logits.byteOffset, s.logits.byteLength)),
    );
    const wire: WireResult = {
      status: 'ok',
      engine: result.engine,
      durationMs: result.durationMs,
      sequences: result.sequences.map((s) => ({ ids: s.ids, vocabSize: s.vocabSize, greedyIds: s.greedyIds })),
    };
    writeFileSync(join(dir, 'result.json'), JSON.stringify(wire));
  } else {
    writeFileSync(join(dir, 'result.json'), JSON.stringify(result satisfies WireResult));
  }
}

// ---- IPC protocol ------------------------------------------------------------------------------

/** Parent → child. */
interface RunMessage {
  type: 'run';
  id: number;
  request: EngineRequest;
}
/** Child → parent: the result of request `id` (an engine failure is a result too), or a failure of the child's own. */
type ChildMessage = { type: 'result'; id: number; result: EngineResult } | { type: 'error'; id: number; message: string };

function isChildMessage(m: unknown): m is ChildMessage {
  if (typeof m !== 'object' || m === null || !('type' in m) || !('id' in m)) return false;
  return (m.type === 'result' || m.type === 'error') && typeof m.id === 'number';
}

function isRunMessage(m: unknown): m is RunMessage {
  return typeof m === 'object' && m !== null && 'type' in m && 'id' in m && m.type === 'run' && typeof m.id === 'number';
}

/** This module's path: the child runs it as its entry (see the bottom of the file). */
const THIS_FILE = fileURLToPath(import.meta.url);
const CHILD_FLAG = '--tmgt-engine-child';

/** Child side: serve run messages until the parent disconnects. */
async function serveChild(engine: ChildEngine): Promise<void> {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('engine child started without an IPC channel');
  const run = await CHILD_ENGINES[engine]();
  let queue: Promise<void> = Promise.resolve();
  process.on('message', (m: unknown) => {
    if (!isRunMessage(m)) return;
    queue = queue.then(async () => {
      let reply: ChildMessage;
      try {
        reply = { type: 'result', id: m.id, result: await run(m.request) };
      } catch (e) {
        reply = { type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) };
      }
      await new Promise<void>((resolve) => send(reply, undefined, {}, () => resolve()));
    });
  });
  // The parent went away (exit, crash, kill): nothing left to serve.
  process.on('disconnect', () => process.exit(0));
}

// ---- parent side -------------------------------------------------------------------------------

interface InFlight {
  id: number;
  /** The child it was sent to: a killed child's late 'close' must not fail the request its successor serves. */
  child: ChildProcess;
  engine: string;
  start: number;
  timeoutMs: number;
  settle: (r: EngineResult) => void;
  timer: NodeJS.Timeout;
}

/**
 * One long-lived engine child. `run` queues requests and serves them one at a time; a child that dies or hangs fails
 * only the request in flight, and the next request starts a new child. `starts` counts the children started.
 */
export class EngineHost {
  private child: ChildProcess | undefined;
  private inFlight: InFlight | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private tail: string[] = [];
  /** Children started so far (1 for a whole run unless one died). */
  starts = 0;

  constructor(readonly engine: ChildEngine) {}

  /** Run `req` in the child; never throws for the engine's or the child's failures. */
  run(req: EngineRequest, timeoutMs = DEFAULT_ENGINE_TIMEOUT_MS): Promise<EngineResult> {
    const result = this.queue.then(() => this.dispatch(req, timeoutMs));
    this.queue = result;
    return result;
  }

  /** Stop the child (if any); a later run starts a new one. */
  close(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  private spawn(): ChildProcess {
    this.tail = [];
    this.starts++;
    const child = fork(THIS_FILE, [CHILD_FLAG, this.engine], {
      // TypeScript sources: the child registers tsx as bin/tmgt.js does (resolved from here, not from the cwd). Its
      // own flags, not the parent's (a test runner's loaders), and no NODE_OPTIONS for the same reason.
      // (createRequire, not import.meta.resolve: test runners' module loaders do not all provide the latter.)
      execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href],
      env: { ...process.env, NODE_OPTIONS: '' },
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.tail.push(line.trim());
      if (this.tail.length > OUTPUT_TAIL_LINES) this.tail.splice(0, this.tail.length - OUTPUT_TAIL_LINES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('message', (m: unknown) => {
      const f = this.inFlight;
      if (!isChildMessage(m) || f === undefined || f.child !== child || m.id !== f.id) return;
      if (m.type === 'result') this.finish(m.result);
      else
        this.finish({
          status: 'failed',
          engine: f.engine,
          message: `${f.engine} child: ${m.message}`,
          durationMs: performance.now() - f.start,
        });
    });
    // 'exit' comes first, 'close' once its pipes are drained: report on 'close' so the last words are in the tail.
    child.on('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const f = this.inFlight;
      if (f === undefined || f.child !== child) return;
      const how = signal !== null ? `crashed (${signal})` : `exited with code ${String(code)}`;
      this.finish({
        status: 'failed',
        engine: f.engine,
        message: `${f.engine} ${how}: ${this.tail.join(' | ')}`,
        durationMs: performance.now() - f.start,
      });
    });
    child.on('error', (e) => {
      const f = this.inFlight;
      if (this.child === child) this.child = undefined;
      if (f !== undefined && f.child === child)
        this.finish({
          status: 'failed',
          engine: f.engine,
          message: `${f.engine} child: ${e.message}`,
          durationMs: performance.now() - f.start,
        });
    });
    return child;
  }

  private finish(result: EngineResult): void {
    const f = this.inFlight;
    if (f === undefined) return;
    clearTimeout(f.timer);
    this.inFlight = undefined;
    this.setIdle(true);
    f.settle(result);
  }

  /** An idle child must not keep the parent's event loop alive; a busy one must. */
  private setIdle(idle: boolean): void {
    const c = this.child;
    if (c === undefined) return;
    for (const h of [c, c.channel, c.stdout, c.stderr]) {
      if (h === null || h === undefined) continue;
      // stdout/stderr are sockets (stdio 'pipe'), typed as plain streams: ref/unref only where they exist.
      const handle = h as Partial<{ ref: () => void; unref: () => void }>;
      if (idle) handle.unref?.();
      else handle.ref?.();
    }
  }

  private dispatch(req: EngineRequest, timeoutMs: number): Promise<EngineResult> {
    return new Promise<EngineResult>((settle) => {
      const start = performance.now();
      const id = this.nextId++;
      const engine = this.engine;
      // A child that died while idle may not have reported 'close' yet: only a connected one is reused.
      const child = this.child !== undefined && this.child.connected ? this.child : this.spawn();
      this.child = child;
      const timer = setTimeout(() => {
        this.inFlight = undefined;
        if (this.child === child) this.child = undefined;
        child.kill('SIGKILL');
        settle({
          status: 'failed',
          engine,
          message: `${engine} timed out after ${timeoutMs} ms: ${this.tail.join(' | ')}`,
          durationMs: performance.now() - start,
        });
      }, timeoutMs);
      this.inFlight = { id, child, engine, start, timeoutMs, settle, timer };
      this.setIdle(false);
      const message: RunMessage = { type: 'run', id, request: req };
      child.send(message, (e) => {
        if (e)
          this.finish({
            status: 'failed',
            engine,
            message: `${engine} child: cannot send the request: ${e.message}`,
            durationMs: performance.now() - start,
          });
      });
    });
  }
}

const hosts = new Map<ChildEngine, EngineHost>();

function isChildEngine(name: string): name is ChildEngine {
  return Object.hasOwn(CHILD_ENGINES, name);
}

/** The run's long-lived host of `engine` (created on first use). */
export function engineHost(engine: ChildEngine): EngineHost {
  let host = hosts.get(engine);
  if (host === undefined) {
    host = new EngineHost(engine);
    hosts.set(engine, host);
  }
  return host;
}

/**
 * Parent side: run `engine` on `req` in its long-lived child process, with a per-request timeout; never throws for
 * the engine's failures (an unknown engine, a crash, a hang are failed results).
 */
export async function runEngineIsolated(engine: string, req: EngineRequest, timeoutMs = DEFAULT_ENGINE_TIMEOUT_MS): Promise<EngineResult> {
  if (!isChildEngine(engine))
    return {
      status: 'failed',
      engine,
      message: `no isolated engine '${engine}' (known: ${Object.keys(CHILD_ENGINES).join(', ')})`,
      durationMs: 0,
    };
  return engineHost(engine).run(req, timeoutMs);
}

// The child's entry: `node --import tsx isolated.ts --tmgt-engine-child <engine>`, started by EngineHost.
if (process.argv[1] === THIS_FILE && process.argv[2] === CHILD_FLAG) {
  const name = process.argv[3] ?? '';
  if (!isChildEngine(name)) {
    process.stderr.write(`unknown engine '${name}'\n`);
    process.exit(2);
  }
  await serveChild(name);
}
