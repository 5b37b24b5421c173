/**
 * What a correct converter storing a tensor in a given type produces: the source quantized with the harness's own
 * bit-exact codec of that type (byte-identical to ggml's reference quantizers and aprender's writer). Fidelity and data
 * quality judge a tensor against this, not against the raw source, so a target's own loss is never a converter's fault.
 */
import { dequantize, quantize } from '../formats/codecs/index.js';
import type { DType } from '../formats/types.js';
import { sqnrDb } from '../metrics.js';

/** The source quantized with the harness's own bit-exact codec of `dtype`: its bytes and SQNR; undefined when the codec cannot. */
export function referenceQuantization(
  dtype: DType,
  x: Float32Array,
  n: number,
): { bytes: Uint8Array; values: Float32Array; sqnrDb: number } | undefined {
  try {
    const bytes = quantize(dtype, x);
    const values = dequantize(dtype, bytes, n);
    return { bytes, values, sqnrDb: sqnrDb(x, values) };
  } catch {
    return undefined; // a type the codecs decode but do not write, or a source aprender's writer would refuse
  }
}
