/**
 * Writers from a conversion plan to a file, one per format. A tensor's bytes are its explicit `data`
 * when a mutant set it, else its `values` encoded as its dtype; a declared `rawType` overrides the id.
 * Nothing here checks that bytes agree with dtype × shape: that is the readers' and checks' job.
 */
import { quantizeAprQ4, quantizeAprQ8 } from '../formats/codecs/apr.js';
import { quantize } from '../formats/codecs/index.js';
import { APR_DTYPE_CODES, type AprDType } from '../formats/apr/format.js';
import { writeAprFile } from '../formats/apr/writer.js';
import { writeGgufFile } from '../formats/gguf/writer.js';
import { isSafetensorsDType } from '../formats/safetensors/dtypes.js';
import { writeSafetensorsFile } from '../formats/safetensors/writer.js';
import type { DType } from '../formats/types.js';
import type { ConversionPlan, PlannedTensor } from './plan.js';

/** Encode f32 values as a dtype the way the tool that writes it does (APR quants as aprender, with its density check). */
export function encodeValues(dtype: DType, values: Float32Array, options: { checkDensity?: boolean } = {}): Uint8Array {
  if (dtype === 'APR_Q8') return quantizeAprQ8(values, options);
  if (dtype === 'APR_Q4') return quantizeAprQ4(values, options);
  return quantize(dtype, values);
}

export function encodePlannedTensor(t: PlannedTensor): Uint8Array {
  return t.data ?? encodeValues(t.dtype, t.values);
}

function isAprDType(d: DType): d is AprDType {
  return Object.hasOwn(APR_DTYPE_CODES, d);
}

/** Write the plan as its format's file at `out` (atomically: the writers go through a temp file). */
export function writeArtifact(plan: ConversionPlan, out: string): void {
  switch (plan.format) {
    case 'gguf':
      writeGgufFile(out, {
        kvs: plan.kvs,
        tensors: plan.tensors.map((t) => {
          const base = { name: t.name, shape: t.shape, dtype: t.dtype, data: encodePlannedTensor(t) };
          return t.rawType === undefined ? base : { ...base, rawType: t.rawType };
        }),
      });
      return;
    case 'apr':
      writeAprFile(out, {
        metadata: plan.metadata,
        tensors: plan.tensors.map((t) => {
          if (!isAprDType(t.dtype)) throw new Error(`APR has no dtype ${t.dtype} (tensor ${t.name})`);
          const base = { name: t.name, shape: t.shape, dtype: t.dtype, data: encodePlannedTensor(t) };
          return t.rawType === undefined ? base : { ...base, rawType: t.rawType };
        }),
      });
      return;
    case 'safetensors':
      writeSafetensorsFile(
        out,
        plan.tensors.map((t) => {
          if (!isSafetensorsDType(t.dtype)) throw new Error(`safetensors has no dtype ${t.dtype} (tensor ${t.name})`);
          if (t.rawType !== undefined) throw new Error(`safetensors declares dtypes by name; rawType is not writable (tensor ${t.name})`);
          return { name: t.name, shape: t.shape, dtype: t.dtype, data: encodePlannedTensor(t) };
        }),
        plan.metadata,
      );
      return;
  }
}
