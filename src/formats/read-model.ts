/**
 * One entry point for every model file: sniff the format from the first bytes and dispatch to its
 * reader. Like the readers, never throws for malformed input.
 */
import { readApr } from './apr/reader.js';
import type { ByteSource } from './byte-source.js';
import { readGguf } from './gguf/reader.js';
import { readSafetensors } from './safetensors/reader.js';
import type { ModelFile } from './types.js';

export type SniffedFormat = 'gguf' | 'apr' | 'safetensors' | 'unknown';

/** How many header bytes after the length may be whitespace before safetensors' `{`. */
const SAFETENSORS_SNIFF_BYTES = 64;

const isJsonSpace = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/**
 * The format the first bytes announce: "GGUF"; "APR" + NUL (or the other APR magics "APRN", "APR1",
 * "APR2", which the APR reader rejects with a precise message); safetensors when a little-endian u64
 * length is followed by `{` (after optional JSON whitespace).
 */
export function sniffFormat(src: ByteSource): SniffedFormat {
  if (src.size < 4) return 'unknown';
  const head = src.read(0, Math.min(src.size, 8 + SAFETENSORS_SNIFF_BYTES));
  const [a, b, c, d] = head;
  if (a === 0x47 && b === 0x47 && c === 0x55 && d === 0x46) return 'gguf';
  if (a === 0x41 && b === 0x50 && c === 0x52 && (d === 0x00 || d === 0x4e || d === 0x31 || d === 0x32)) return 'apr';
  for (let i = 8; i < head.length; i++) {
    const byte = head[i] as number;
    if (byte === 0x7b) return 'safetensors';
    if (!isJsonSpace(byte)) break;
  }
  return 'unknown';
}

/** Read a GGUF, APR v2 or safetensors file; anything else is a ModelFile of format 'unknown' with a fatal F-FILE-001. */
export function readModelFile(src: ByteSource): ModelFile {
  let format: SniffedFormat;
  try {
    format = sniffFormat(src);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      format: 'unknown',
      metadata: new Map(),
      tensors: [],
      issues: [{ code: 'F-FILE-001', message: `unreadable: ${message}`, fatal: true, evidence: { internal: true } }],
    };
  }
  switch (format) {
    case 'gguf':
      return readGguf(src);
    case 'apr':
      return readApr(src);
    case 'safetensors':
      return readSafetensors(src);
    case 'unknown': {
      const n = Math.min(src.size, 8);
      const first = n > 0 ? [...src.read(0, n)].map((x) => x.toString(16).padStart(2, '0')).join(' ') : '';
      return {
        format: 'unknown',
        metadata: new Map(),
        tensors: [],
        issues: [
          {
            code: 'F-FILE-001',
            message: `unknown format: ${src.size} bytes starting ${first || '(empty)'}, not GGUF ("GGUF"), APR ("APR\\0") or safetensors (u64 length, then '{')`,
            fatal: true,
            evidence: { firstBytes: first, fileBytes: src.size },
          },
        ],
      };
    }
  }
}
