import { TARGET_IDS } from './contracts/targets.js';

/** The four prompts every model is judged on (the Python tiny-model-ground-truth's set). */
export const DEFAULT_PROMPTS = ['What is 2+2? Answer:', 'The capital of France is', 'def fibonacci(n):', 'Hello, my name is'] as const;

/** The trained tiny zoo: the bounds of tolerances.ts are calibrated on it, and the mutant kill matrix runs on it. */
export const TRAINED_MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;

/** Their heavy-tailed variants (real-LLM-like outlier entries and channels): the distributions that break quantizers. */
export const HEAVY_TAILED_MODELS = ['llama-tiny-heavy', 'qwen2-tiny-heavy', 'gpt2-tiny-heavy'] as const;

/** The default matrix `tmgt check` runs with no flags (`make check`): every tiny model at every target. */
export const DEFAULT_MATRIX = {
  models: [...TRAINED_MODELS, ...HEAVY_TAILED_MODELS],
  targets: TARGET_IDS,
  converter: 'reference',
  engine: 'bundled',
  maxNewTokens: 32,
  converterTimeoutMs: 120_000,
} as const;
