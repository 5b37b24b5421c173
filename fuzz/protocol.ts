/** What fuzz/child.ts tells fuzz/main.ts: progress on fd 3, one JSON line per finished chunk on stdout. */
import type { FileCode } from '../src/formats/types.js';

/** Written on fd 3 (u32 LE) while a chunk of inputs is being generated: no input is being read. */
export const GENERATING = 0xffffffff;

/** One input kept as a witness: its bytes (base64) and the distinct codes its read returned. */
export interface Witness {
  index: number;
  b64: string;
  codes: FileCode[];
}

/** A read that broke the contract. */
export interface Crash {
  index: number;
  message: string;
  b64: string;
}

/** What the child reports after each chunk: counts and findings of that chunk only (the parent sums them). */
export interface ChunkReport {
  /** Inputs read in this chunk. */
  inputs: number;
  /** The next index the child would read. */
  next: number;
  crashes: Crash[];
  /** Issue signature → how often it was seen in this chunk. */
  signatureCounts: Record<string, number>;
  /** Issue signature → its smallest witness in this chunk. */
  witnesses: Record<string, Witness>;
  /** The slowest read of the chunk. */
  slowest: Witness & { ms: number };
  /** The read whose heap + array buffers grew the most. */
  largestAlloc: Witness & { bytes: number };
  /** process.resourceUsage().maxRSS of the child so far, MiB. */
  maxRssMb: number;
}
