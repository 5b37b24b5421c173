/**
 * llama.cpp's own quantizer as a built-in real converter: `llama_model_quantize` from the libllama that
 * node-llama-cpp ships prebuilt, called through koffi. Nothing is downloaded or built; the library is found
 * by resolving the npm packages, so it is exactly the llama.cpp release node-llama-cpp runs (tag v0.4.0 for
 * node-llama-cpp 3.21.1), and its output is byte-identical to that release's `llama-quantize` CLI.
 *
 * The call runs in a child process (`llama-cpp-quantize-child.mjs`, plain ESM started by `node`, no tsx):
 * ggml aborts the whole process on some inputs, and a converter's crash must become a failed ConvertResult
 * (→ F-RUNTIME-001), never a dead harness.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { availableParallelism } from 'node:os';
import { artifactPath, runArgv, type ConvertRequest, type ConvertResult } from './adapter.js';

const CHILD = new URL('./llama-cpp-quantize-child.mjs', import.meta.url).pathname;
const HERE = dirname(new URL(import.meta.url).pathname);

/**
 * Our quantization type → `enum llama_ftype` (include/llama.h of the shipped release). q4_k is Q4_K_M, as
 * llama-quantize's `Q4_K_M` (its per-tensor rules promote some tensors to Q6_K); `--pure` would keep Q4_K throughout.
 */
export const LLAMA_CPP_FTYPES = {
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q4_k: 15,
  q6_k: 18,
  bf16: 32,
} as const;

export type LlamaCppQuantType = keyof typeof LLAMA_CPP_FTYPES;

export function isLlamaCppQuantType(type: string): type is LlamaCppQuantType {
  return Object.hasOwn(LLAMA_CPP_FTYPES, type);
}

/**
 * What llama-quantize (not `--pure`) leaves in high precision, as regexes over GGUF names: 1-D tensors (norms,
 * biases) are never quantized, and GPT-2's learned positions are kept by its `tensor_allows_quantization`.
 * For the policy checks (F-LAYOUT-CONTRACT-007), the same list the `llama-quantize` entry of tmgt.config.ts declares.
 */
export const LLAMA_CPP_KEEPS_HIGH_PRECISION: readonly string[] = ['_norm\\.weight$', '\\.bias$', '^position_embd\\.weight$'];

/** The child's exit code when the library's params struct reads back differently from the release it was copied from. */
const LAYOUT_MISMATCH_EXIT = 3;

/** Threads for one quantization: llama.cpp's own default is every core, which a matrix pool would oversubscribe. */
const DEFAULT_THREADS = Math.min(4, availableParallelism());

export interface LlamaCppQuantizeOptions {
  /** An f32 (or f16/bf16) GGUF llama.cpp can load. */
  inGguf: string;
  /** The file to write; appears only when the quantizer succeeded (written beside it, then renamed). */
  outGguf: string;
  type: LlamaCppQuantType;
  timeoutMs: number;
  /** llama-quantize's `--pure`: every 2-D tensor in the type's own ggml type, no per-tensor rules. Default false. */
  pure?: boolean;
  /** Quantizer threads (default min(4, cores)); the output does not depend on it. */
  nthread?: number;
  /** Directory to resolve node-llama-cpp from (default: this package). Tests point it elsewhere to get 'skipped'. */
  resolveFrom?: string;
}

/** Where the shipped libllama is, or why it cannot be found. */
export type LlamaLibraryLocation = { found: true; path: string; packageDir: string } | { found: false; reason: string };

/** The root directory of the package a resolved entry file belongs to (`…/node_modules/<name>`). */
function packageRoot(entry: string, name: string): string | undefined {
  const marker = `${sep}node_modules${sep}${name.split('/').join(sep)}${sep}`;
  const at = entry.lastIndexOf(marker);
  return at < 0 ? undefined : entry.slice(0, at + marker.length - 1);
}

/** libllama's file name differs per platform and carries the release (`libllama.v0.4.0.so`). */
const LIBRARY_NAME = /^(lib)?llama(\.v[0-9.]+)?\.(so|dylib|dll)$/;

/**
 * Find the libllama that node-llama-cpp's prebuilt package for this platform ships
 * (`@node-llama-cpp/<platform>-<arch>/bins/<platform>-<arch>/`), resolving packages the way Node does, from
 * `resolveFrom` (default: this module). The CPU build only: GPU flavours are separate optional packages.
 */
export function locateLlamaLibrary(resolveFrom: string = HERE): LlamaLibraryLocation {
  const platform = process.platform === 'darwin' ? 'mac' : process.platform === 'win32' ? 'win' : process.platform;
  const flavour = `${platform}-${process.arch}`;
  const pkg = `@node-llama-cpp/${flavour}`;
  const from = createRequire(join(isAbsolute(resolveFrom) ? resolveFrom : resolve(resolveFrom), 'noop.js'));
  let nodeLlamaCpp: string;
  try {
    nodeLlamaCpp = from.resolve('node-llama-cpp');
  } catch {
    return { found: false, reason: `node-llama-cpp is not installed (resolved from ${resolveFrom})` };
  }
  let entry: string;
  try {
    // The prebuilt package is node-llama-cpp's optional dependency: resolve it from there (it may be nested).
    entry = createRequire(nodeLlamaCpp).resolve(pkg);
  } catch {
    return { found: false, reason: `node-llama-cpp has no prebuilt binary package ${pkg} installed for this platform` };
  }
  const root = packageRoot(entry, pkg);
  if (!root) return { found: false, reason: `cannot tell the package directory of ${pkg} from ${entry}` };
  const bins = join(root, 'bins', flavour);
  const names = existsSync(bins)
    ? readdirSync(bins)
        .filter((n) => LIBRARY_NAME.test(n))
        .sort()
    : [];
  const name = names[0];
  if (name === undefined) return { found: false, reason: `${pkg} ships no libllama in ${bins}` };
  return { found: true, path: join(bins, name), packageDir: root };
}

/**
 * Quantize one GGUF with llama.cpp's `llama_model_quantize`, in a child process. The quantizer's own failure
 * (non-zero return, abort, signal, timeout, no output) is a `failed` value; a missing library is `skipped`.
 */
export async function quantizeWithLlamaCpp(opts: LlamaCppQuantizeOptions): Promise<ConvertResult> {
  const lib = locateLlamaLibrary(opts.resolveFrom);
  if (!lib.found) return { status: 'skipped', reason: `llama.cpp quantizer unavailable: ${lib.reason}` };
  mkdirSync(dirname(opts.outGguf), { recursive: true });
  // Written under a temporary name and renamed on success, so a crash mid-write never leaves a plausible artifact.
  const partial = `${opts.outGguf}.partial-${process.pid}`;
  rmSync(partial, { force: true });
  const job = {
    lib: lib.path,
    inGguf: resolve(opts.inGguf),
    outGguf: resolve(partial),
    ftype: LLAMA_CPP_FTYPES[opts.type],
    pure: opts.pure === true,
    nthread: opts.nthread ?? DEFAULT_THREADS,
  };
  const result = await runArgv([process.execPath, CHILD, JSON.stringify(job)], partial, opts.timeoutMs, 'gguf');
  if (result.status !== 'ok') {
    rmSync(partial, { force: true });
    // The child's layout canary (exit 3): this libllama is not the release our struct is from. Not the quantizer's failure.
    const mismatch = /\{"layoutMismatch":("(?:[^"\\]|\\.)*")\}/.exec(result.log);
    if (result.exitCode === LAYOUT_MISMATCH_EXIT && mismatch?.[1] !== undefined) {
      const detail = JSON.parse(mismatch[1]) as string; // group 1 matches a JSON string literal only
      return { status: 'skipped', reason: `${lib.path}: llama_model_quantize_params does not match llama.h of v0.4.0: ${detail}` };
    }
    const reason = `llama_model_quantize (${opts.type}): ${result.reason}`;
    return { ...result, reason };
  }
  renameSync(partial, opts.outGguf);
  return { ...result, artifact: opts.outGguf };
}

/**
 * The matrix's entry (`--converter llama.cpp`): llama-quantize's rules (not `--pure`) on the reference converter's
 * f32 GGUF of the model, as the `llama-quantize` entry of tmgt.config.ts does with the CLI. `referenceF32` makes
 * (or finds) that f32 GGUF; its failure is returned as is. Targets other than the nine GGUF types are skipped.
 */
export async function convertWithLlamaCpp(req: ConvertRequest, referenceF32: () => Promise<ConvertResult>): Promise<ConvertResult> {
  const type = req.target.type;
  if (req.target.format !== 'gguf' || !isLlamaCppQuantType(type)) {
    return { status: 'skipped', reason: `converter '${req.converter}' (llama.cpp's quantizer) offers no ${req.target.id}` };
  }
  const lib = locateLlamaLibrary();
  if (!lib.found) return { status: 'skipped', reason: `llama.cpp quantizer unavailable: ${lib.reason}` };
  const f32 = await referenceF32();
  if (f32.status !== 'ok') return f32;
  return quantizeWithLlamaCpp({ inGguf: f32.artifact, outGguf: artifactPath(req), type, timeoutMs: req.timeoutMs });
}
