/**
 * A GGUF back to an HF checkpoint directory (the round trip's B → A′): names through the name map, layouts undone,
 * values decoded to f32.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HfCheckpointFromGguf } from '../contracts/roundtrip.js';
import { errorMessage, HarnessError } from '../errors.js';
import { metaNumberOf } from '../metrics.js';
import { FileByteSource } from '../formats/byte-source.js';
import { readGguf, readTensorF32, type GgufFile } from '../formats/gguf/reader.js';
import { ggufToHf, isMappedArch, MAPPED_ARCHS, undoGgufLayout } from '../formats/name-map.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import { f32Bytes, writeSafetensorsFile } from '../formats/safetensors/writer.js';
import type { DType } from '../formats/types.js';
import { checkpointWeights } from '../zoo/checkpoint.js';

export type { HfCheckpointFromGguf };

/** HarnessError code of a GGUF that cannot be turned back into a checkpoint (the round-trip check turns it into a verdict). */
export const ROUNDTRIP_ERROR = 'E-ROUNDTRIP';

/** The artifact cannot be turned back into a checkpoint (unreadable, unknown arch, unmapped tensor). */
export class RoundtripError extends HarnessError {
  override readonly name = 'RoundtripError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(ROUNDTRIP_ERROR, message, options);
  }
}

/** Files of an HF checkpoint directory that are not weights: copied as they are into A′. */
const CHECKPOINT_SIDE_FILES =
  /^(config\.json|generation_config\.json|tokenizer.*\.json|tokenizer\.model|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt)$/;

function metaNumber(file: GgufFile, key: string): number | undefined {
  return metaNumberOf(file.metadata.get(key));
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
    if (!isMappedArch(arch))
      throw new RoundtripError(`general.architecture ${JSON.stringify(arch)} has no HF name map (${MAPPED_ARCHS.join(', ')})`);
    const heads = metaNumber(file, `${arch}.attention.head_count`);
    const kvHeads = metaNumber(file, `${arch}.attention.head_count_kv`) ?? heads;
    // The source's tensor names and `__metadata__`, from its one file or every shard of its index.
    const sourceNames: string[] = [];
    let sourceMeta: Record<string, string> | undefined;
    for (const path of checkpointWeights(sourceDir).files) {
      const sourceFile = new FileByteSource(path);
      try {
        const st = readSafetensors(sourceFile);
        sourceNames.push(...st.tensors.map((t) => t.name));
        sourceMeta ??= Object.fromEntries([...st.metadata].filter((e): e is [string, string] => typeof e[1] === 'string'));
      } finally {
        sourceFile.close();
      }
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
        throw new RoundtripError(`cannot decode '${t.name}' (${t.dtype}): ${errorMessage(e)}`, { cause: e });
      }
      let hf: { values: Float32Array; shape: number[] };
      try {
        hf = undoGgufLayout(m.transform, values, t.shape, heads === undefined ? undefined : { heads, kvHeads: kvHeads ?? heads });
      } catch (e) {
        // e.g. head counts in the metadata that do not split the rows of a Q/K weight.
        throw new RoundtripError(`cannot undo the ${m.transform} layout of '${t.name}': ${errorMessage(e)}`, { cause: e });
      }
      tensors.set(name, { gguf: t.name, dtype: t.dtype });
      out.push({ name, shape: hf.shape, dtype: 'F32', data: f32Bytes(hf.values) });
    }
    mkdirSync(outDir, { recursive: true });
    writeSafetensorsFile(join(outDir, 'model.safetensors'), out, sourceMeta ?? {});
    const copied = readdirSync(sourceDir).filter((f) => CHECKPOINT_SIDE_FILES.test(f));
    for (const f of copied) copyFileSync(join(sourceDir, f), join(outDir, f));
    return { arch, tensors, copied, fileType: metaNumber(file, 'general.file_type') };
  } finally {
    src.close();
  }
}
