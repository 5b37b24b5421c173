// tmgt's configuration: external converters run through the command adapter, and the default matrix.
// Placeholders in argv: {source} (HF checkpoint dir, or the reference f32 GGUF for llama-quantize),
// {out} (file to write), {type} (the tool's name for the target type), {workdir} (scratch dir).
import { defineConfig } from './src/config-file.js';

const TMGT = new URL('./bin/tmgt.js', import.meta.url).pathname;

export default defineConfig({
  converters: [
    {
      id: 'command:reference',
      description: 'the reference converter run through the command adapter (must match the built-in path exactly)',
      argv: ['node', TMGT, 'convert', '--model', '{source}', '--target', 'gguf/{type}', '--out', '{out}'],
      format: 'gguf',
      types: { 'gguf/f32': 'f32', 'gguf/q8_0': 'q8_0' },
      timeoutMs: 120_000,
    },
    {
      id: 'apr',
      description: "aprender's `apr import` (HF dir → APR v2), when `apr` is on PATH",
      argv: ['apr', 'import', '{source}', '--quantize', '{type}', '-o', '{out}'],
      format: 'apr',
      types: { 'apr/int8': 'int8', 'apr/int4': 'int4' },
      timeoutMs: 600_000,
    },
    {
      id: 'llama-quantize',
      description: "llama.cpp's llama-quantize on the reference converter's f32 GGUF, when it is on PATH",
      argv: ['llama-quantize', '{source}', '{out}', '{type}'],
      format: 'gguf',
      source: 'reference-gguf-f32',
      types: { 'gguf/q8_0': 'Q8_0', 'gguf/q4_0': 'Q4_0', 'gguf/q4_1': 'Q4_1', 'gguf/q5_0': 'Q5_0', 'gguf/q5_1': 'Q5_1', 'gguf/q4_k': 'Q4_K_M', 'gguf/q6_k': 'Q6_K', 'gguf/f16': 'F16', 'gguf/bf16': 'BF16' },
      keepsHighPrecision: ['_norm\\.weight$', '\\.bias$', '^position_embd\\.weight$'],
      timeoutMs: 600_000,
    },
    // A generic entry: any executable that takes an HF checkpoint dir and writes one model file.
    // { id: 'my-converter', argv: ['my-converter', '--in', '{source}', '--dtype', '{type}', '--out', '{out}'],
    //   format: 'gguf', types: { 'gguf/q8_0': 'q8_0' }, keepsHighPrecision: ['_norm\\.weight$'], timeoutMs: 300_000 },
  ],
});
