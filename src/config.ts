/** The four prompts every model is judged on (the Python tiny-model-ground-truth's set). */
export const DEFAULT_PROMPTS = ['What is 2+2? Answer:', 'The capital of France is', 'def fibonacci(n):', 'Hello, my name is'] as const;

/** The default matrix `tmgt check` runs with no flags (`make check`). */
export const DEFAULT_MATRIX = {
  models: ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'],
  targets: ['gguf/f32', 'gguf/q8_0'],
  converter: 'reference',
  engine: 'bundled',
  maxNewTokens: 32,
  converterTimeoutMs: 120_000,
} as const;
