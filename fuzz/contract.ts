/**
 * The readers' documented outcome for any input, as one check: a read returns (never throws); every
 * issue carries an F-FILE-* code and a message and is not the catch-all for an internal error; a fatal
 * issue leaves no tensor table; every tensor not flagged out of bounds decodes to shape's element count.
 * Anything else is a crash: a reader bug.
 */
import { readApr, readAprTensorF32 } from '../src/formats/apr/reader.js';
import type { ByteSource } from '../src/formats/byte-source.js';
import { canDequantize } from '../src/formats/codecs/index.js';
import { readGguf, readTensorF32 } from '../src/formats/gguf/reader.js';
import { readModelFile } from '../src/formats/read-model.js';
import { readSafetensors, readSafetensorsTensorF32 } from '../src/formats/safetensors/reader.js';
import type { FileCode, ModelFile, TensorEntry } from '../src/formats/types.js';

/** What `make fuzz` drives: the three readers and the sniffing dispatcher (`auto`). */
export const FUZZ_TARGETS = ['gguf', 'apr', 'safetensors', 'auto'] as const;
export type FuzzTarget = (typeof FUZZ_TARGETS)[number];

const FILE_CODES: ReadonlySet<string> = new Set<FileCode>(['F-FILE-001', 'F-FILE-002', 'F-FILE-003', 'F-FILE-004']);

type Decode = (src: ByteSource, t: TensorEntry) => Float32Array;
const DECODERS: Record<ModelFile['format'], Decode | undefined> = {
  gguf: readTensorF32,
  apr: readAprTensorF32,
  safetensors: readSafetensorsTensorF32,
  unknown: undefined,
};

/** Each target's read: the reader itself, or readModelFile for `auto`. */
export const READERS: Record<FuzzTarget, (src: ByteSource) => ModelFile> = {
  gguf: readGguf,
  apr: (src) => readApr(src),
  safetensors: readSafetensors,
  auto: readModelFile,
};

/** The outcome of one read that kept the contract. */
export interface ReadOutcome {
  file: ModelFile;
  /** Tensors decoded (every one not flagged out of bounds whose dtype has a decoder). */
  decodedTensors: number;
}

/** A broken contract: the reader threw, or returned something its contract rules out. */
export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

/**
 * Read `src` with `target`'s reader and check the contract; throws ContractViolation (or whatever the
 * reader or a decoder threw) when it does not hold.
 */
export function readChecked(target: FuzzTarget, src: ByteSource): ReadOutcome {
  const file = READERS[target](src);
  for (const i of file.issues) {
    if (!FILE_CODES.has(i.code)) throw new ContractViolation(`issue without a file code: ${JSON.stringify(i)}`);
    if (typeof i.message !== 'string' || i.message.length === 0) throw new ContractViolation(`issue without a message: ${i.code}`);
    if (i.evidence?.['internal'] !== undefined) throw new ContractViolation(`reader bug caught as an issue: ${i.message}`);
  }
  if (file.tensors.length > 0 && file.issues.some((i) => i.fatal)) throw new ContractViolation('a fatal issue must leave no tensor table');
  if (file.format === 'unknown' && file.issues[0]?.code !== 'F-FILE-001') throw new ContractViolation('unknown format without F-FILE-001');
  const decode = DECODERS[file.format];
  const outOfBounds = new Set(file.issues.filter((i) => i.code === 'F-FILE-002').map((i) => i.tensor));
  let decodedTensors = 0;
  for (const t of file.tensors) {
    if (decode === undefined || outOfBounds.has(t.name) || !canDequantize(t.dtype)) continue;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (decode(src, t).length !== n) throw new ContractViolation(`tensor '${t.name}' decoded to the wrong length`);
    decodedTensors++;
  }
  return { file, decodedTensors };
}

/**
 * An issue's shape with the file-specific parts taken out (numbers, quoted names, hex), so two inputs
 * that hit the same check in the same way share a signature: the fuzzer keeps one witness per signature.
 */
export function issueSignature(i: { code: string; fatal: boolean; message: string }): string {
  const shape = i.message
    .replace(/'[^']*'/g, "'…'")
    .replace(/"[^"]*"/g, '"…"')
    .replace(/0x[0-9a-f]+/gi, 'H')
    .replace(/\b[0-9a-f]{2}( [0-9a-f]{2})+\b/gi, 'H')
    .replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi, 'N')
    .slice(0, 160);
  return `${i.code}${i.fatal ? '!' : ''} ${shape}`;
}
