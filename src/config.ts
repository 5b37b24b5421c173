import { TARGET_IDS } from './contracts/targets.js';

/** The four prompts every model is judged on (the Python tiny-model-ground-truth's set). */
export const DEFAULT_PROMPTS = ['What is 2+2? Answer:', 'The capital of France is', 'def fibonacci(n):', 'Hello, my name is'] as const;

/** The trained tiny zoo: the bounds of tolerances.ts are calibrated on it, and the mutant kill matrix runs on it. */
export const TRAINED_MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;

/** Their heavy-tailed variants (real-LLM-like outlier entries and channels): the distributions that break quantizers. */
export const HEAVY_TAILED_MODELS = ['llama-tiny-heavy', 'qwen2-tiny-heavy', 'gpt2-tiny-heavy'] as const;

/**
 * Tiny models with a real vocabulary (derived from a trained one): the tokenizer families users' checkpoints have.
 * Llama-2's (SentencePiece-derived) runs in `make check`; Llama-3's and Qwen's (128k, 152k ids) in the nightly.
 */
export const REAL_VOCAB_MODELS = ['llama-tiny-llama2'] as const;
export const NIGHTLY_REAL_VOCAB_MODELS = ['llama-tiny-llama3', 'qwen2-tiny-qwen'] as const;

/** The default matrix `tmgt check` runs with no flags (`make check`): every tiny model at every target. */
export const DEFAULT_MATRIX = {
  models: [...TRAINED_MODELS, ...HEAVY_TAILED_MODELS, ...REAL_VOCAB_MODELS],
  targets: TARGET_IDS,
  converter: 'reference',
  engine: 'bundled',
  maxNewTokens: 32,
  converterTimeoutMs: 120_000,
} as const;
