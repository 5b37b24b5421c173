#!/usr/bin/env node
/**
 * Builds the engine's WebAssembly kernels from their committed AssemblyScript source:
 * src/engine/wasm/assembly/kernels.ts → src/engine/wasm/build/kernels.wasm (gitignored; never a committed blob).
 * Run by `make` (the $(WASM) rule) and, when the file is missing, by the engine on first use.
 *
 * Plain .mjs on purpose: it runs before anything else is built and must not need tsx.
 * The memory is imported and shared (SharedArrayBuffer-backed), so worker threads can run the same kernels
 * over the same weights, and views of it never detach when it grows; 65 536 pages is wasm32's 4 GiB.
 */
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const here = dirname(fileURLToPath(import.meta.url));
export const WASM_SOURCE = join(here, 'assembly', 'kernels.ts');
export const WASM_OUTPUT = join(here, 'build', 'kernels.wasm');

export async function buildKernels(output = WASM_OUTPUT) {
  mkdirSync(dirname(output), { recursive: true });
  // A unique temp name + rename: concurrent builders (parallel test workers) never see a half-written file.
  const tmp = `${output}.${process.pid}.${Date.now()}.tmp`;
  const { error, stderr } = await asc.main([
    WASM_SOURCE,
    '--outFile',
    tmp,
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--use',
    'abort=',
    '--enable',
    'simd',
    '--enable',
    'threads',
    '--importMemory',
    '--sharedMemory',
    '--initialMemory',
    '1',
    '--maximumMemory',
    '65536',
  ]);
  if (error) throw new Error(`asc failed: ${error.message}\n${stderr.toString()}`);
  renameSync(tmp, output);
  return output;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildKernels(process.argv[2] ?? WASM_OUTPUT);
  console.log(`built ${out}`);
}
