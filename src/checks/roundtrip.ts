/**
 * Round trip (F-ROUNDTRIP-001): A → B → A. A is an HF checkpoint directory, B its GGUF artifact. Converting B
 * back to an HF directory A′ (GGUF names and layouts undone with the name map, values written F32) must give
 * every source tensor back bit for bit, and converting A′ again must give B byte for byte. Together: the
 * artifact loses nothing the source had, and holds nothing its source cannot reproduce (order, metadata,
 * padding all follow from A).
 *
 * What "identical" means per artifact type (what the check requires):
 * - f32 (general.file_type 0): every tensor of A′ has exactly the bits of A's (A's values as f32: an F16 or
 *   BF16 source is compared after its exact widening).
 * - f16 / bf16 (file_type 1 / 32): a tensor the artifact stores in that half type must equal the
 *   round-to-nearest-even half rounding of A's f32 value, bit for bit (the codecs' fp32ToFp16Bits /
 *   fp32ToBf16Bits, as numpy's astype and gguf-py do); every other tensor (norms, biases, kept in F32) must
 *   be exact. A′ is then the half-rounded A, and converting A′ to the same type again must give B.
 * - Block-quantized artifacts do not round-trip by design; `roundtripApplies` says which targets do.
 */
import { statusOf } from './codes.js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { sha256 } from '../cache.js';
import { diffBits } from '../metrics.js';
import type { HfCheckpointFromGguf } from '../contracts/roundtrip.js';
import { HarnessError } from '../errors.js';
import { FileByteSource } from '../formats/byte-source.js';
import { dequantize, quantize } from '../formats/codecs/index.js';
import { readGguf, readTensorBytes } from '../formats/gguf/reader.js';
import type { DType } from '../formats/types.js';
import { checkpointWeights, loadCheckpoint } from '../zoo/checkpoint.js';
import { isIgnoredSourceTensor } from '../zoo/gguf-names.js';
import type { Arch } from '../zoo/types.js';
import type { CheckResult, Verdict } from './codes.js';

/** general.file_type → the half type its 2-D weights are stored in (llama_ftype MOSTLY_F16 = 1, MOSTLY_BF16 = 32). */
const HALF_FILE_TYPES: ReadonlyMap<number, DType> = new Map<number, DType>([
  [1, 'F16'],
  [32, 'BF16'],
]);

/** Where two GGUF files first differ, named: header region, differing KVs, differing tensors. */
function locateGgufDifference(aPath: string, bPath: string): Record<string, unknown> {
  const a = readFileSync(aPath);
  const b = readFileSync(bPath);
  let at = 0;
  const n = Math.min(a.length, b.length);
  while (at < n && a[at] === b[at]) at++;
  const sa = new FileByteSource(aPath);
  const sb = new FileByteSource(bPath);
  try {
    const fa = readGguf(sa);
    const fb = readGguf(sb);
    const keys = new Set([...fa.metadata.keys(), ...fb.metadata.keys()]);
    const differingKeys = [...keys].filter(
      (k) => JSON.stringify(fa.metadata.get(k), bigintJson) !== JSON.stringify(fb.metadata.get(k), bigintJson),
    );
    const orderA = fa.tensors.map((t) => t.name);
    const orderB = fb.tensors.map((t) => t.name);
    const byName = new Map(fb.tensors.map((t) => [t.name, t]));
    const differingTensors = fa.tensors
      .filter((t) => {
        const u = byName.get(t.name);
        if (u === undefined || u.dtype !== t.dtype || u.shape.join() !== t.shape.join()) return true;
        return Buffer.compare(readTensorBytes(sa, t), readTensorBytes(sb, u)) !== 0;
      })
      .map((t) => t.name)
      .concat(orderB.filter((name) => !orderA.includes(name)));
    const inTensor = fa.tensors.find((t) => at >= t.offset && at < t.offset + t.spanBytes)?.name;
    const region =
      fa.dataOffset !== undefined && at >= fa.dataOffset
        ? `tensor data${inTensor ? ` of '${inTensor}'` : ''}`
        : 'header (metadata or tensor infos)';
    return {
      firstDifferentByte: at,
      region,
      sizes: [a.length, b.length],
      differingKeys,
      differingTensors,
      tensorOrderSame: orderA.join() === orderB.join(),
    };
  } finally {
    sa.close();
    sb.close();
  }
}

function bigintJson(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** Options of checkRoundtrip. */
export interface RoundtripOptions {
  /**
   * B → A′: the artifact back to an HF checkpoint directory (src/converters/gguf-to-hf.ts). Throws a HarnessError
   * with code 'E-ROUNDTRIP' when the artifact cannot be turned back at all (that is a verdict, not a harness error).
   */
  toHf: (artifactPath: string, sourceDir: string, outDir: string) => HfCheckpointFromGguf;
  /**
   * Converts a checkpoint directory to a GGUF at `out` the way the artifact was made: the cell's own converter, whose
   * bytes (metadata it adds, its tensor order) only it can reproduce. Without one, A′ → B′ is not judged (the tensor
   * data still is; the metadata that matters is the metadata suite's to judge), never against another converter's bytes.
   */
  reconvert?: (checkpointDir: string, out: string) => void | Promise<void>;
}

/**
 * F-ROUNDTRIP-001 for one artifact of `sourceDir`: A → B → A′ must give every source tensor back (see the
 * module comment for f16/bf16), and A′ → B′ must give B byte for byte. Works in
 * `workDir/roundtrip/<artifact hash>/<source dir name>` (the directory name is kept because the reference
 * converter writes it into general.name). An artifact that cannot be turned back at all is a verdict, not a
 * throw. When there is no converter to re-convert with (no reference target for the file type, no
 * `reconvert`), the second half is a 'warn' verdict and the check's status rests on the first half.
 */
export async function checkRoundtrip(
  sourceDir: string,
  artifactPath: string,
  workDir: string,
  opts: RoundtripOptions,
): Promise<CheckResult> {
  const verdicts: Verdict[] = [];
  const result = (metrics: Record<string, number>): CheckResult => ({
    suite: 'roundtrip',
    status: statusOf(verdicts),
    verdicts,
    metrics,
  });
  const base = join(workDir, 'roundtrip', sha256(artifactPath).slice(0, 12));
  rmSync(base, { recursive: true, force: true });
  const outDir = join(base, basename(sourceDir));
  let back: HfCheckpointFromGguf;
  try {
    back = opts.toHf(artifactPath, sourceDir, outDir);
  } catch (e) {
    if (!(e instanceof HarnessError && e.code === 'E-ROUNDTRIP')) throw e;
    verdicts.push({
      code: 'F-ROUNDTRIP-001',
      status: 'fail',
      message: `the artifact cannot be converted back to a checkpoint: ${e.message}`,
      evidence: { artifact: artifactPath, error: e.message },
    });
    return result({});
  }

  // A → B → A′: tensor by tensor.
  const fileType = back.fileType;
  const half = fileType === undefined ? undefined : HALF_FILE_TYPES.get(fileType);
  const a = loadCheckpoint(sourceDir);
  const a2 = loadCheckpoint(outDir);
  let matching = 0;
  let halfRounded = 0;
  let differingElements = 0;
  const ignored: string[] = [];
  for (const [name, t] of a.tensors) {
    const got = a2.tensors.get(name);
    if (got === undefined) {
      // The arch is one the name map knows (toHf checks it).
      if (isIgnoredSourceTensor(back.arch as Arch, name)) {
        ignored.push(name);
        continue;
      }
      verdicts.push({
        code: 'F-ROUNDTRIP-001',
        status: 'fail',
        tensor: name,
        message: `source tensor has no counterpart after the round trip`,
        evidence: { expected: name, got: null },
      });
      continue;
    }
    if (got.shape.join() !== t.shape.join()) {
      verdicts.push({
        code: 'F-ROUNDTRIP-001',
        status: 'fail',
        tensor: name,
        message: `shape [${got.shape.join(', ')}] after the round trip, source [${t.shape.join(', ')}]`,
        evidence: { expected: t.shape, got: got.shape },
      });
      continue;
    }
    const stored = back.tensors.get(name)?.dtype;
    const rounded = half !== undefined && stored === half;
    const expected = rounded ? dequantize(half, quantize(half, t.data), t.data.length) : t.data;
    const d = diffBits(expected, got.data);
    if (d.differing === 0) {
      matching++;
      if (rounded) halfRounded++;
      continue;
    }
    differingElements += d.differing;
    verdicts.push({
      code: 'F-ROUNDTRIP-001',
      status: 'fail',
      tensor: name,
      message: `${d.differing} of ${t.data.length} values differ after the round trip (first at ${d.first}: expected ${expected[d.first]}, got ${got.data[d.first]}; stored as ${stored ?? '?'} in '${back.tensors.get(name)?.gguf}')`,
      evidence: {
        differing: d.differing,
        elements: t.data.length,
        firstIndex: d.first,
        expected: expected[d.first],
        got: got.data[d.first],
        maxAbsDiff: d.maxAbsDiff,
        storedAs: stored,
        requirement: rounded ? `${half} round-to-nearest-even of the source` : 'bit-identical to the source',
      },
    });
  }
  const extra = [...a2.tensors.keys()].filter((n) => !a.tensors.has(n));
  for (const name of extra) {
    verdicts.push({
      code: 'F-ROUNDTRIP-001',
      status: 'fail',
      tensor: name,
      message: `the artifact holds a tensor the source does not have (from '${back.tensors.get(name)?.gguf}')`,
      evidence: { expected: null, got: name },
    });
  }

  // B → A′ → B′: byte for byte.
  const reconverted = join(base, 'reconverted.gguf');
  const reconvert = opts.reconvert;
  let bytesIdentical = 0;
  if (reconvert !== undefined) {
    await reconvert(outDir, reconverted);
    if (!existsSync(reconverted)) throw new HarnessError('E-ROUNDTRIP', `reconvert wrote nothing at ${reconverted}`);
    if (Buffer.compare(readFileSync(reconverted), readFileSync(artifactPath)) === 0) bytesIdentical = 1;
    else {
      const where = locateGgufDifference(artifactPath, reconverted);
      verdicts.push({
        code: 'F-ROUNDTRIP-001',
        status: 'fail',
        message: `converting the round-tripped checkpoint again does not give the artifact back: first difference at byte ${where['firstDifferentByte']}, in the ${where['region']}`,
        evidence: { artifact: artifactPath, reconverted, ...where },
      });
    }
  }
  return result({
    tensors: a.tensors.size,
    // Tensors meeting their requirement (bit-identical, or the half rounding for half-stored ones).
    tensorsMatching: matching,
    tensorsHalfRounded: halfRounded,
    differingElements,
    ignoredSourceBuffers: ignored.length,
    reconverted: reconvert === undefined ? 0 : 1,
    reconvertedByteIdentical: bytesIdentical,
    // Informative: an F32 source written by a safetensors serializer like ours comes back byte for byte (a sharded
    // source comes back as one file, so never).
    safetensorsByteIdentical: sameBytes(join(outDir, 'model.safetensors'), checkpointWeights(sourceDir).files) ? 1 : 0,
  });
}

/** Whether `path` holds exactly the bytes of the one file in `files`. */
function sameBytes(path: string, files: readonly string[]): boolean {
  const [only, ...rest] = files;
  return only !== undefined && rest.length === 0 && Buffer.compare(readFileSync(path), readFileSync(only)) === 0;
}
