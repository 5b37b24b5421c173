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
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { sha256 } from '../cache.js';
import { isIgnoredSourceTensor } from '../converters/gguf-names.js';
import { convertCheckpoint } from '../converters/reference.js';
import { TARGETS, type Target, type TargetId } from '../converters/targets.js';
import { HarnessError } from '../errors.js';
import { FileByteSource } from '../formats/byte-source.js';
import { dequantize, quantize } from '../formats/codecs/index.js';
import { readGguf, readTensorBytes, readTensorF32, type GgufFile } from '../formats/gguf/reader.js';
import { ggufToHf, MAPPED_ARCHS, undoGgufLayout, type MappedArch } from '../formats/name-map.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import { f32Bytes, writeSafetensorsFile } from '../formats/safetensors/writer.js';
import type { DType, MetaValue } from '../formats/types.js';
import { loadCheckpoint } from '../zoo/checkpoint.js';
import type { CheckResult, Verdict } from './codes.js';

/** Target types whose artifacts must round-trip (block-quantized ones lose information by design). */
export const ROUNDTRIP_TYPES = ['f32', 'f16', 'bf16'] as const;

/** Whether the round trip applies to a target id (`gguf/f32`) or type (`f32`). */
export function roundtripApplies(target: string): boolean {
  const type = target.slice(target.lastIndexOf('/') + 1);
  return (ROUNDTRIP_TYPES as readonly string[]).includes(type);
}

/** The artifact cannot be turned back into a checkpoint (unreadable, unknown arch, unmapped tensor). */
export class RoundtripError extends HarnessError {
  override readonly name = 'RoundtripError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('E-ROUNDTRIP', message, options);
  }
}

/** Files of an HF checkpoint directory that are not weights: copied as they are into A′. */
const CHECKPOINT_SIDE_FILES = /^(config\.json|generation_config\.json|tokenizer.*\.json|tokenizer\.model|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt)$/;

/** general.file_type → the half type its 2-D weights are stored in (llama_ftype MOSTLY_F16 = 1, MOSTLY_BF16 = 32). */
const HALF_FILE_TYPES: ReadonlyMap<number, DType> = new Map<number, DType>([
  [1, 'F16'],
  [32, 'BF16'],
]);

function metaNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

function isMappedArch(v: MetaValue | undefined): v is MappedArch {
  return typeof v === 'string' && (MAPPED_ARCHS as readonly string[]).includes(v);
}

/** What ggufToHfCheckpoint wrote. */
export interface HfCheckpointFromGguf {
  arch: MappedArch;
  /** HF tensor name → the GGUF tensor it came from and its stored dtype. */
  tensors: Map<string, { gguf: string; dtype: DType }>;
  /** Non-weight files copied from the source directory. */
  copied: string[];
  /** The GGUF's general.file_type, if it has one. */
  fileType: number | undefined;
}

/**
 * Convert a GGUF back to an HF checkpoint directory: every tensor renamed with the name map (GPT-2 names get
 * the `transformer.` prefix when the source's have it), its layout undone (llama Q/K un-permuted with the
 * GGUF's own head counts, GPT-2 Conv1D weights transposed back to [in, out]), decoded to f32 and written to
 * `outDir/model.safetensors` as F32 (with the source's `__metadata__`); `config.json` and the tokenizer
 * files are copied from `sourceDir`. Throws RoundtripError when the GGUF cannot be read or names a tensor the
 * map does not know. Holds the whole model in memory: meant for the zoo's tiny models.
 */
export function ggufToHfCheckpoint(ggufPath: string, sourceDir: string, outDir: string): HfCheckpointFromGguf {
  const src = new FileByteSource(ggufPath);
  try {
    const file = readGguf(src);
    const fatal = file.issues.find((i) => i.fatal);
    if (fatal) throw new RoundtripError(`${ggufPath}: ${fatal.code} ${fatal.message}`);
    const arch = file.metadata.get('general.architecture');
    if (!isMappedArch(arch)) throw new RoundtripError(`general.architecture ${JSON.stringify(arch)} has no HF name map (${MAPPED_ARCHS.join(', ')})`);
    const heads = metaNumber(file, `${arch}.attention.head_count`);
    const kvHeads = metaNumber(file, `${arch}.attention.head_count_kv`) ?? heads;
    const sourceFile = new FileByteSource(join(sourceDir, 'model.safetensors'));
    let sourceNames: string[];
    let sourceMeta: Record<string, string>;
    try {
      const st = readSafetensors(sourceFile);
      sourceNames = st.tensors.map((t) => t.name);
      sourceMeta = Object.fromEntries([...st.metadata].filter((e): e is [string, string] => typeof e[1] === 'string'));
    } finally {
      sourceFile.close();
    }
    const gpt2Prefix = arch === 'gpt2' && sourceNames.some((n) => n.startsWith('transformer.')) ? 'transformer.' : '';
    const tensors = new Map<string, { gguf: string; dtype: DType }>();
    const out: { name: string; shape: number[]; dtype: 'F32'; data: Uint8Array }[] = [];
    for (const t of file.tensors) {
      const m = ggufToHf(arch, t.name);
      if (m === undefined) throw new RoundtripError(`GGUF tensor '${t.name}' has no HF name in the ${arch} name map`);
      const name = gpt2Prefix && m.name !== 'lm_head.weight' ? `${gpt2Prefix}${m.name}` : m.name;
      if (tensors.has(name)) throw new RoundtripError(`GGUF tensors '${tensors.get(name)?.gguf}' and '${t.name}' both map to '${name}'`);
      let values: Float32Array;
      try {
        values = readTensorF32(src, t);
      } catch (e) {
        throw new RoundtripError(`cannot decode '${t.name}' (${t.dtype}): ${(e as Error).message}`, { cause: e });
      }
      let hf: { values: Float32Array; shape: number[] };
      try {
        hf = undoGgufLayout(m.transform, values, t.shape, heads === undefined ? undefined : { heads, kvHeads: kvHeads ?? heads });
      } catch (e) {
        // e.g. head counts in the metadata that do not split the rows of a Q/K weight.
        throw new RoundtripError(`cannot undo the ${m.transform} layout of '${t.name}': ${(e as Error).message}`, { cause: e });
      }
      tensors.set(name, { gguf: t.name, dtype: t.dtype });
      out.push({ name, shape: hf.shape, dtype: 'F32', data: f32Bytes(hf.values) });
    }
    mkdirSync(outDir, { recursive: true });
    writeSafetensorsFile(join(outDir, 'model.safetensors'), out, sourceMeta);
    const copied = readdirSync(sourceDir).filter((f) => CHECKPOINT_SIDE_FILES.test(f));
    for (const f of copied) copyFileSync(join(sourceDir, f), join(outDir, f));
    return { arch, tensors, copied, fileType: metaNumber(file, 'general.file_type') };
  } finally {
    src.close();
  }
}

/** Bit-level comparison of two f32 arrays. */
function diffBits(expected: Float32Array, got: Float32Array): { differing: number; first: number; maxAbsDiff: number } {
  const a = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const b = new Uint32Array(got.buffer, got.byteOffset, got.length);
  let differing = 0;
  let first = -1;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    differing++;
    if (first < 0) first = i;
    const d = Math.abs((expected[i] as number) - (got[i] as number));
    if (!(d <= maxAbsDiff)) maxAbsDiff = d;
  }
  return { differing, first, maxAbsDiff };
}

/** The reference target for a general.file_type, if the reference converter offers one. */
function referenceTargetFor(fileType: number | undefined): Target | undefined {
  if (fileType === undefined) return undefined;
  const id = (Object.keys(TARGETS) as TargetId[]).find((k) => TARGETS[k].format === 'gguf' && TARGETS[k].fileType === fileType);
  return id === undefined ? undefined : { ...TARGETS[id], id };
}

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
    const differingKeys = [...keys].filter((k) => JSON.stringify(fa.metadata.get(k), bigintJson) !== JSON.stringify(fb.metadata.get(k), bigintJson));
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
    const region = fa.dataOffset !== undefined && at >= fa.dataOffset ? `tensor data${inTensor ? ` of '${inTensor}'` : ''}` : 'header (metadata or tensor infos)';
    return { firstDifferentByte: at, region, sizes: [a.length, b.length], differingKeys, differingTensors, tensorOrderSame: orderA.join() === orderB.join() };
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
   * Converts a checkpoint directory to a GGUF at `out` the way the artifact was made. Defaults to the
   * reference converter at the target whose file type the artifact declares. Pass the cell's own converter
   * for a third-party artifact: its bytes (metadata it adds, its tensor order) are only reproducible by it.
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
export async function checkRoundtrip(sourceDir: string, artifactPath: string, workDir: string, opts: RoundtripOptions = {}): Promise<CheckResult> {
  const verdicts: Verdict[] = [];
  const result = (metrics: Record<string, number>): CheckResult => ({
    suite: 'roundtrip',
    status: verdicts.some((v) => v.status === 'fail') ? 'fail' : 'pass',
    verdicts,
    metrics,
  });
  const base = join(workDir, 'roundtrip', sha256(artifactPath).slice(0, 12));
  rmSync(base, { recursive: true, force: true });
  const outDir = join(base, basename(sourceDir));
  let back: HfCheckpointFromGguf;
  try {
    back = ggufToHfCheckpoint(artifactPath, sourceDir, outDir);
  } catch (e) {
    if (!(e instanceof RoundtripError)) throw e;
    verdicts.push({ code: 'F-ROUNDTRIP-001', status: 'fail', message: `the artifact cannot be converted back to a checkpoint: ${e.message}`, evidence: { artifact: artifactPath, error: e.message } });
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
      if (isIgnoredSourceTensor(back.arch, name)) {
        ignored.push(name);
        continue;
      }
      verdicts.push({ code: 'F-ROUNDTRIP-001', status: 'fail', tensor: name, message: `source tensor has no counterpart after the round trip`, evidence: { expected: name, got: null } });
      continue;
    }
    if (got.shape.join() !== t.shape.join()) {
      verdicts.push({ code: 'F-ROUNDTRIP-001', status: 'fail', tensor: name, message: `shape [${got.shape.join(', ')}] after the round trip, source [${t.shape.join(', ')}]`, evidence: { expected: t.shape, got: got.shape } });
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
    verdicts.push({ code: 'F-ROUNDTRIP-001', status: 'fail', tensor: name, message: `the artifact holds a tensor the source does not have (from '${back.tensors.get(name)?.gguf}')`, evidence: { expected: null, got: name } });
  }

  // B → A′ → B′: byte for byte.
  const reconverted = join(base, 'reconverted.gguf');
  const target = referenceTargetFor(fileType);
  const reconvert = opts.reconvert ?? (target === undefined ? undefined : (dir: string, out: string) => convertCheckpoint(dir, target, out));
  let bytesIdentical = 0;
  if (reconvert === undefined) {
    verdicts.push({
      code: 'F-ROUNDTRIP-001',
      status: 'warn',
      message: `B → A′ → B′ not checked: the reference converter has no target for general.file_type ${fileType} and no reconvert was given`,
      evidence: { fileType: fileType ?? null },
    });
  } else {
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
    reconvertedByteIdentical: bytesIdentical,
    // Informative: an F32 source written by a safetensors serializer like ours comes back byte for byte.
    safetensorsByteIdentical: Buffer.compare(readFileSync(join(outDir, 'model.safetensors')), readFileSync(join(sourceDir, 'model.safetensors'))) === 0 ? 1 : 0,
  });
}
