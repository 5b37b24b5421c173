/**
 * Locating where a candidate's forward pass leaves the oracle's: per-layer NMSE of the layer outputs
 * (residual stream after each block, ids.length × hidden), and the first layer that is a failure source.
 */
import { nmse } from './metrics.js';

/** A layer that fails while its input passes. */
export interface DivergingLayer {
  /** Block index: the GGUF tensors of this layer are `blk.<layer>.*`. */
  layer: number;
  /** NMSE of this layer's output against the oracle's. */
  nmse: number;
  /** NMSE of its input: the previous layer's output, 0 for layer 0 (the embedding counts as passing). */
  inputNmse: number;
}

/** Σ(c−r)²/Σr² of every layer output; NaN for a layer the candidate lacks or whose size differs. */
export function layerNmses(oracleLayers: readonly Float32Array[], engineLayers: readonly Float32Array[]): number[] {
  return oracleLayers.map((r, l) => {
    const c = engineLayers[l];
    return c === undefined || c.length !== r.length ? NaN : nmse(r, c);
  });
}

/**
 * The first layer whose output NMSE exceeds `bound` while its input passes: coremltools'
 * `find_failing_ops` rule (an op is a failure source when it fails and its inputs pass; reference/
 * parity-anchors.md §5, §7 rule 1), on the chain of blocks. Layer 0's input is the embedding, which counts
 * as passing. A NaN NMSE (missing or mis-sized layer, NaN values) fails. Undefined when every layer passes:
 * then a logits failure comes from after the last block (final norm, output head).
 *
 * On a chain the first failing layer always has a passing input, so this is the first failing layer; the
 * input's NMSE is returned so a report shows the layer's own jump ("NMSE 4e-2, input 1e-6").
 */
export function firstDivergingLayer(oracleLayers: Float32Array[], engineLayers: Float32Array[], bound: number): DivergingLayer | undefined {
  const e = layerNmses(oracleLayers, engineLayers);
  const passes = (x: number | undefined): boolean => x !== undefined && x <= bound;
  for (let l = 0; l < e.length; l++) {
    const inputNmse = l === 0 ? 0 : (e[l - 1] as number);
    if (!passes(e[l]) && (l === 0 || passes(inputNmse))) return { layer: l, nmse: e[l] as number, inputNmse };
  }
  return undefined;
}
