import type { DType } from './dtypes.js';

/**
 * A converter's quantization policy, as data the layout checks hold its output to (F-LAYOUT-CONTRACT-003/-007).
 * Patterns are regular expressions over the artifact's tensor names.
 */
export interface QuantPolicy {
  /** Tensors promised to stay in high precision (norms, biases, position embeddings …). */
  highPrecision: string[];
  /** dtypes a high-precision tensor may have. */
  highPrecisionDTypes: DType[];
  /** dtypes any other 2-D weight may have (the target type and its documented fallbacks). */
  quantizedDTypes: DType[];
  /** Whether at least one tensor must actually be quantized (false for f32/f16/bf16 targets). */
  expectsQuantized: boolean;
}
