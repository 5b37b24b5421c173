/** The four prompts every model is judged on (the Python tiny-model-ground-truth's set). */
export const DEFAULT_PROMPTS = ['What is 2+2? Answer:', 'The capital of France is', 'def fibonacci(n):', 'Hello, my name is'] as const;

import { TARGET_IDS } from './contracts/targets.js';

/** The default matrix `tmgt check` runs with no flags (`make check`): every tiny model at every target. */
export const DEFAULT_MATRIX = {
  models: ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'],
  targets: TARGET_IDS,
  converter: 'reference',
  engine: 'bundled',
  maxNewTokens: 32,
  converterTimeoutMs: 120_000,
} as const;
