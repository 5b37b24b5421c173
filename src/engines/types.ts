import type { ModelFormat } from '../contracts/targets.js';

/** What an engine adapter is asked to do: teacher-force each sequence, optionally continue greedily. */
export interface EngineRequest {
  artifact: string;
  /** The artifact's format (the engine sniffs the file anyway). */
  format: ModelFormat;
  /**
   * The source checkpoint's config.json: where a safetensors artifact's hyperparameters come from (the
   * file has none). Ignored for GGUF and APR, which carry their own.
   */
  configPath?: string;
  /** Token ids to evaluate position by position (prompt + the oracle's continuation). */
  sequences: number[][];
  /** Greedy tokens to generate after each sequence's `promptLength` first tokens (0: none). */
  maxNewTokens: number;
  promptLengths: number[];
  captureLayers: boolean;
}

export interface EngineSequenceResult {
  ids: number[];
  /** ids.length × vocab: row t is the next-token logits after reading ids[0..t]. */
  logits: Float32Array;
  vocabSize: number;
  greedyIds: number[];
  /** Per layer, ids.length × hidden, when captured. */
  layerOutputs?: Float32Array[];
}

export type EngineResult =
  | { status: 'ok'; engine: string; sequences: EngineSequenceResult[]; durationMs: number }
  | { status: 'failed'; engine: string; message: string; durationMs: number };
