/**
 * The fuzz corpus: interesting inputs kept under test/fuzz-corpus/<target>/ and replayed by
 * test/formats/fuzz-corpus.test.ts. Per target: the smallest witness of each code, the smallest witness of
 * the rarest issue signatures, the slowest read and the read that allocated most (both timing-dependent,
 * so they keep fixed names and are replaced each run), and every input that crashed or hung (kept forever:
 * regressions). manifest.json records each file's role and the codes its read returned, which the replay
 * test holds the readers to.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileCode } from '../src/formats/types.js';
import { BufferByteSource } from '../src/formats/byte-source.js';
import { readChecked, type FuzzTarget } from './contract.js';
import type { ChunkReport, Crash, Witness } from './protocol.js';

/** The committed corpus. */
export const CORPUS_DIR = new URL('../test/fuzz-corpus/', import.meta.url).pathname;

/** Signature witnesses kept per target (the rarest first), so the committed corpus stays small. */
const SIGNATURES_PER_TARGET = 24;
/** Witnesses larger than this are not committed (the smallest witness of a signature is usually tiny). */
const MAX_WITNESS_BYTES = 16 * 1024;

/** Why a corpus file is there. */
export type CorpusRole = 'code' | 'signature' | 'slowest' | 'largest-alloc' | 'crash' | 'hang' | 'regression';

/** One manifest entry, keyed by `<target>/<file>`. */
export interface CorpusEntry {
  target: FuzzTarget;
  role: CorpusRole;
  /** Distinct codes the read returned when the file was written (null: the read crashed then). */
  codes: FileCode[] | null;
  signature?: string;
  /** What made it interesting: a duration, an allocation, a crash message, a fixed bug. */
  note?: string;
}

export type Manifest = Record<string, CorpusEntry>;

/** Everything one target's children reported, summed. */
export class TargetFindings {
  inputs = 0;
  peakRssMb = 0;
  readonly codes = new Set<FileCode>();
  readonly crashes: Crash[] = [];
  readonly hangs: Crash[] = [];
  readonly signatureCounts = new Map<string, number>();
  readonly witnesses = new Map<string, Witness>();
  slowest: (Witness & { ms: number }) | undefined;
  largestAlloc: (Witness & { bytes: number }) | undefined;

  constructor(readonly target: FuzzTarget) {}

  merge(r: ChunkReport): void {
    this.inputs += r.inputs;
    this.peakRssMb = Math.max(this.peakRssMb, r.maxRssMb);
    this.crashes.push(...r.crashes);
    for (const [sig, n] of Object.entries(r.signatureCounts)) this.signatureCounts.set(sig, (this.signatureCounts.get(sig) ?? 0) + n);
    for (const [sig, w] of Object.entries(r.witnesses)) {
      for (const c of w.codes) this.codes.add(c);
      const kept = this.witnesses.get(sig);
      // Smallest witness wins; equal sizes keep the earlier index, so the choice does not depend on chunk timing.
      if (kept === undefined || w.b64.length < kept.b64.length || (w.b64.length === kept.b64.length && w.index < kept.index))
        this.witnesses.set(sig, w);
    }
    if (r.slowest.index >= 0 && (this.slowest === undefined || r.slowest.ms > this.slowest.ms)) this.slowest = r.slowest;
    if (r.largestAlloc.index >= 0 && (this.largestAlloc === undefined || r.largestAlloc.bytes > this.largestAlloc.bytes))
      this.largestAlloc = r.largestAlloc;
  }
}

/** Best of five reads of `bytes` by `target`'s reader, ms. */
function readMs(target: FuzzTarget, bytes: Buffer): number {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    try {
      readChecked(target, new BufferByteSource(new Uint8Array(bytes)));
    } catch {
      // A crash input is timed all the same.
    }
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const sha12 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex').slice(0, 12);

/** The manifest of the corpus in `dir` (empty when there is none yet). */
export function readManifest(dir = CORPUS_DIR): Manifest {
  const path = join(dir, 'manifest.json');
  // The manifest is only ever written by writeCorpus below, from these types.
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Manifest) : {};
}

/**
 * Write each target's interesting inputs and the manifest. Files of the roles a run decides afresh
 * (code, signature, slowest, largest-alloc) are replaced; crash, hang and regression files are kept.
 * Returns the number of files in the corpus.
 */
export function writeCorpus(all: readonly TargetFindings[], corpusDir = CORPUS_DIR): number {
  const manifest = readManifest(corpusDir);
  for (const f of all) {
    const dir = join(corpusDir, f.target);
    mkdirSync(dir, { recursive: true });
    const slowestKey = `${f.target}/slowest.bin`;
    // Sub-millisecond reads rank differently run to run: the committed slowest input (file and entry) stays unless
    // the new one is clearly slower (2× and 1 ms more), timed side by side here, so a clean `make fuzz` leaves the
    // tree clean.
    let keepSlowest = false;
    if (f.slowest !== undefined && manifest[slowestKey] !== undefined && existsSync(join(corpusDir, slowestKey))) {
      const oldMs = readMs(f.target, readFileSync(join(corpusDir, slowestKey)));
      const freshMs = readMs(f.target, Buffer.from(f.slowest.b64, 'base64'));
      keepSlowest = freshMs < 2 * oldMs || freshMs - oldMs < 1;
    }
    for (const [key, e] of Object.entries(manifest)) {
      if (e.target !== f.target || e.role === 'crash' || e.role === 'hang' || e.role === 'regression') continue;
      if (keepSlowest && key === slowestKey) continue;
      rmSync(join(corpusDir, key), { force: true });
      delete manifest[key];
    }
    const put = (name: string, bytes: Buffer, entry: Omit<CorpusEntry, 'target'>): void => {
      const key = `${f.target}/${name}`;
      if (manifest[key] !== undefined) return;
      writeFileSync(join(corpusDir, key), bytes);
      manifest[key] = { target: f.target, ...entry };
    };
    const small = [...f.witnesses].filter(([, w]) => Buffer.byteLength(w.b64, 'base64') <= MAX_WITNESS_BYTES);
    // The smallest witness of each code.
    for (const code of [...f.codes].sort()) {
      const best = small
        .filter(([, w]) => w.codes.includes(code))
        .sort(([, a], [, b]) => a.b64.length - b.b64.length || a.index - b.index)[0];
      if (best === undefined) continue;
      const bytes = Buffer.from(best[1].b64, 'base64');
      put(`${code}-${sha12(bytes)}.bin`, bytes, { role: 'code', codes: best[1].codes, signature: best[0] });
    }
    // The rarest signatures: the checks a generator reaches least often are the ones most worth pinning.
    const rarest = small.sort(
      ([a], [b]) => (f.signatureCounts.get(a) ?? 0) - (f.signatureCounts.get(b) ?? 0) || (a < b ? -1 : a > b ? 1 : 0),
    );
    for (const [sig, w] of rarest.slice(0, SIGNATURES_PER_TARGET)) {
      const bytes = Buffer.from(w.b64, 'base64');
      put(`sig-${sha12(bytes)}.bin`, bytes, {
        role: 'signature',
        codes: w.codes,
        signature: sig,
        note: `seen ${f.signatureCounts.get(sig) ?? 0} times`,
      });
    }
    if (f.slowest !== undefined)
      put('slowest.bin', Buffer.from(f.slowest.b64, 'base64'), {
        role: 'slowest',
        codes: f.slowest.codes,
        note: `${f.slowest.ms.toFixed(2)} ms`,
      });
    if (f.largestAlloc !== undefined) {
      put('largest-alloc.bin', Buffer.from(f.largestAlloc.b64, 'base64'), {
        role: 'largest-alloc',
        codes: f.largestAlloc.codes,
        note: `heap + array buffers grew ~${(f.largestAlloc.bytes / 2 ** 20).toFixed(1)} MiB`,
      });
    }
    for (const [role, list] of [
      ['crash', f.crashes],
      ['hang', f.hangs],
    ] as const) {
      for (const c of list) {
        const bytes = Buffer.from(c.b64, 'base64');
        put(`${role}-${sha12(bytes)}.bin`, bytes, { role, codes: null, note: c.message });
      }
    }
    // Files no manifest entry names (left by an interrupted run) would be replayed by nobody: remove them.
    for (const name of readdirSync(dir)) if (manifest[`${f.target}/${name}`] === undefined) rmSync(join(dir, name));
  }
  const sorted = Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => (a < b ? -1 : 1)));
  writeFileSync(join(corpusDir, 'manifest.json'), `${JSON.stringify(sorted, null, 1)}\n`);
  return Object.keys(sorted).length;
}
