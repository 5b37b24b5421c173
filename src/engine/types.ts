/** What the bundled engine exposes per architecture; the registry picks the implementation by `general.architecture`. */
import type { KernelChoice } from './kernels.js';

/** The dimensions every architecture reports. */
export interface EngineDims {
  vocab: number;
  hidden: number;
  layers: number;
}

/** How a model computes (defaults: the WASM SIMD kernels). */
export interface EngineOptions {
  /** `wasm` (default) or the plain TypeScript reference `ts`. */
  kernels?: KernelChoice;
  /** Threads for the WASM mat-vec (row ranges on worker threads); default the core count, or TMGT_ENGINE_THREADS. */
  threads?: number;
}

/** One decoding stream with a KV cache. */
export interface EngineSession {
  /** Tokens read so far. */
  readonly position: number;
  /**
   * A new session holding a copy of this one's KV cache (positions [0, position)), room for `maxTokens`
   * in all, no layer capture: a greedy continuation goes on from a prompt without recomputing it.
   */
  fork(maxTokens: number): EngineSession;
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
