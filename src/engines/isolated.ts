/**
 * Engines that load native code (llama.cpp) run in a child process: ggml aborts the whole process on some
 * malformed files (measured: an F16 norm weight → `binary_op: unsupported types … GGML_ABORT`), and a
 * converter's output is hostile until checked. A crash, a signal or a hang becomes a failed EngineResult
 * with the child's last words; the harness goes on.
 *
 * Protocol: `tmgt __engine <name> <dir>` reads `<dir>/request.json`, writes `<dir>/result.json` and one
 * `<dir>/logits-<i>.f32` per sequence (raw little-endian f32).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { EngineRequest, EngineResult, EngineSequenceResult } from './types.js';

const TMGT_BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;

interface WireSequence {
  ids: number[];
  vocabSize: number;
  greedyIds: number[];
}

type WireResult = { status: 'ok'; engine: string; sequences: WireSequence[]; durationMs: number } | { status: 'failed'; engine: string; message: string; durationMs: number };

/** Child side: run the engine on the request in `dir` and write its result there. */
export async function serveEngineRequest(dir: string, run: (req: EngineRequest) => Promise<EngineResult>): Promise<void> {
  const req = JSON.parse(readFileSync(join(dir, 'request.json'), 'utf8')) as EngineRequest;
  const result = await run(req);
  if (result.status === 'ok') {
    result.sequences.forEach((s, i) => writeFileSync(join(dir, `logits-${i}.f32`), new Uint8Array(s.logits.buffer, s.logits.byteOffset, s.logits.byteLength)));
    const wire: WireResult = { status: 'ok', engine: result.engine, durationMs: result.durationMs, sequences: result.sequences.map((s) => ({ ids: s.ids, vocabSize: s.vocabSize, greedyIds: s.greedyIds })) };
    writeFileSync(join(dir, 'result.json'), JSON.stringify(wire));
  } else {
    writeFileSync(join(dir, 'result.json'), JSON.stringify(result satisfies WireResult));
  }
}

/** Parent side: run `engine` on `req` in a child process, with a timeout; never throws for the engine's failures. */
export async function runEngineIsolated(engine: string, req: EngineRequest, timeoutMs = 300_000): Promise<EngineResult> {
  const start = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'tmgt-engine-'));
  try {
    writeFileSync(join(dir, 'request.json'), JSON.stringify(req));
    const r = await execa(process.execPath, [TMGT_BIN, '__engine', engine, dir], { reject: false, all: true, stdin: 'ignore', timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, NODE_OPTIONS: '' } });
    const durationMs = performance.now() - start;
    let wire: WireResult | undefined;
    try {
      wire = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as WireResult;
    } catch {
      wire = undefined;
    }
    if (!wire || r.exitCode !== 0) {
      const tail = (r.all ?? '').trim().split('\n').slice(-6).join(' | ');
      const how = r.timedOut ? `timed out after ${timeoutMs} ms` : r.signal ? `crashed (${r.signal})` : `exited with code ${r.exitCode}`;
      return { status: 'failed', engine, message: `${engine} ${how}: ${tail}`, durationMs };
    }
    if (wire.status === 'failed') return { ...wire, durationMs };
    const sequences: EngineSequenceResult[] = wire.sequences.map((s, i) => {
      const buf = readFileSync(join(dir, `logits-${i}.f32`));
      const bytes = new Uint8Array(buf.byteLength);
      bytes.set(buf);
      return { ...s, logits: new Float32Array(bytes.buffer) };
    });
    return { status: 'ok', engine: wire.engine, sequences, durationMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
