/**
 * One fuzzing child: `node --max-old-space-size=… --import tsx/esm fuzz/child.ts <target> <seed> <from> <to> [skip,…]`.
 * Reads inputs [from, to) of the target (fuzz/generate.ts) except those in `skip` (inputs that hung or
 * blew the memory cap in an earlier child), writes each index on fd 3 before reading it, and prints one
 * ChunkReport line per chunk. The parent (fuzz/main.ts) bounds time and memory from outside.
 */
import { writeSync } from 'node:fs';
import { BufferByteSource } from '../src/formats/byte-source.js';
import type { FileCode, ModelFile } from '../src/formats/types.js';
import { FUZZ_TARGETS, issueSignature, readChecked, type FuzzTarget } from './contract.js';
import { CHUNK, inputs } from './generate.js';
import { GENERATING, type ChunkReport } from './protocol.js';

const PROGRESS_FD = 3;
const [targetArg, seedArg, fromArg, toArg, skipArg] = process.argv.slice(2);
const target = FUZZ_TARGETS.find((t) => t === targetArg);
if (target === undefined) throw new Error(`usage: child.ts <${FUZZ_TARGETS.join('|')}> <seed> <from> <to> [skip,…]`);
const seed = Number(seedArg);
const from = Number(fromArg);
const to = Number(toArg);
const skip = new Set((skipArg ?? '').split(',').filter(Boolean).map(Number));

/**
 * FUZZ_INJECT=hang@12,alloc@40,throw@70: misbehave on purpose at those indexes (a busy loop, unbounded
 * allocation, an exception), so the driver's own test can prove that it sees each one.
 */
const inject = new Map(
  (process.env['FUZZ_INJECT'] ?? '')
    .split(',')
    .filter(Boolean)
    .map((s) => {
      const [kind, at] = s.split('@');
      return [Number(at), kind] as const;
    }),
);
const retained: Uint8Array[] = [];
function misbehave(index: number): void {
  const kind = inject.get(index);
  if (kind === 'hang') for (;;);
  if (kind === 'alloc') for (;;) retained.push(new Uint8Array(2 ** 27).fill(1));
  if (kind === 'throw') throw new Error(`injected failure at input ${index}`);
}

const progress = Buffer.alloc(4);
function tell(index: number): void {
  progress.writeUInt32LE(index >>> 0);
  writeSync(PROGRESS_FD, progress);
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function emptyReport(next: number): ChunkReport {
  const none = { index: -1, b64: '', codes: [] };
  return {
    inputs: 0,
    next,
    crashes: [],
    signatureCounts: {},
    witnesses: {},
    slowest: { ...none, ms: -1 },
    largestAlloc: { ...none, bytes: -1 },
    maxRssMb: 0,
  };
}

function flush(report: ChunkReport): void {
  report.maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** One read, timed, with the growth of heap + array buffers across it; a broken contract as `error`. */
function measure(t: FuzzTarget, bytes: Uint8Array, index: number): { ms: number; grewBytes: number; file?: ModelFile; error?: string } {
  const before = process.memoryUsage();
  const t0 = performance.now();
  try {
    if (inject.size > 0) misbehave(index);
    const { file } = readChecked(t, new BufferByteSource(bytes));
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    return { ms, grewBytes: after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers, file };
  } catch (err) {
    return { ms: performance.now() - t0, grewBytes: 0, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
}

function run(t: FuzzTarget): void {
  let report = emptyReport(from);
  tell(GENERATING);
  for (const { index, bytes } of inputs(t, seed, from, to)) {
    if (index % CHUNK === 0 && report.inputs > 0) {
      flush(report);
      report = emptyReport(index);
    }
    report.next = index + 1;
    if (skip.has(index)) continue;
    tell(index);
    const first = measure(t, bytes, index);
    let codes: FileCode[] = [];
    if (first.error !== undefined) {
      report.crashes.push({ index, message: first.error.slice(0, 500), b64: b64(bytes) });
    } else if (first.file !== undefined) {
      codes = [...new Set(first.file.issues.map((i) => i.code))].sort();
      for (const i of first.file.issues) {
        const sig = issueSignature(i);
        report.signatureCounts[sig] = (report.signatureCounts[sig] ?? 0) + 1;
        const kept = report.witnesses[sig];
        if (kept === undefined || kept.b64.length > (bytes.length * 4) / 3 + 4) report.witnesses[sig] = { index, b64: b64(bytes), codes };
      }
    }
    report.inputs++;
    if (first.error === undefined && (first.ms > report.slowest.ms || first.grewBytes > report.largestAlloc.bytes)) {
      // A record on one read is often a GC pause or a busy core: it stands only if two more reads agree. Time is
      // the minimum of the three; growth the median (a collection during one read makes its growth look small).
      const again = [first, measure(t, bytes, index), measure(t, bytes, index)];
      const ms = Math.min(...again.map((m) => m.ms));
      const grewBytes = again.map((m) => m.grewBytes).sort((a, b) => a - b)[1] ?? first.grewBytes;
      if (ms > report.slowest.ms) report.slowest = { index, b64: b64(bytes), codes, ms };
      if (grewBytes > report.largestAlloc.bytes) report.largestAlloc = { index, b64: b64(bytes), codes, bytes: grewBytes };
    }
    // The next chunk is generated before its first read: tell the parent so that does not count as a slow read.
    if ((index + 1) % CHUNK === 0) tell(GENERATING);
  }
  flush(report);
}

run(target);
