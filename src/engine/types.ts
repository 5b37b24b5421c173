/** What the bundled engine exposes per architecture; the registry picks the implementation by `general.architecture`. */

/** The dimensions every architecture reports. */
export interface EngineDims {
  vocab: number;
  hidden: number;
  layers: number;
}

/** One decoding stream with a KV cache. */
export interface EngineSession {
  /** Feed one token at the next position; returns the next-token logits (vocab). */
  step(token: number): Float32Array;
  /** Per layer, the residual stream after the block, one row per position (when capturing). */
  readonly layerOutputs: Float32Array[][];
}

/** A model loaded from a tensor table, ready to open sessions. */
export interface EngineModel {
  readonly arch: string;
  readonly hp: EngineDims;
  session(maxTokens: number, captureLayers?: boolean): EngineSession;
}
