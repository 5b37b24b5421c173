// tmgt's configuration for this repository. The package's own command converters — `command:reference` (the reference
// converter through the command adapter), `apr` (aprender's `apr import`, when on PATH) and `llama-quantize` (llama.cpp's
// CLI on the reference f32 GGUF, when on PATH) — are always available: PACKAGE_CONVERTERS in src/config-file.ts.
// Add a converter of your own here; placeholders in argv: {source} (the HF checkpoint dir, or the reference f32 GGUF with
// `source: 'reference-gguf-f32'`), {out} (the file to write), {type} (the tool's name for the target type), {workdir}.
import { defineConfig } from './src/config-file.js';

export default defineConfig({
  converters: [
    // { id: 'my-converter', argv: ['my-converter', '--in', '{source}', '--dtype', '{type}', '--out', '{out}'],
    //   format: 'gguf', types: { 'gguf/q8_0': 'q8_0' }, keepsHighPrecision: ['_norm\\.weight$'], timeoutMs: 300_000 },
  ],
});
