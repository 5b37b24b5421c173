// Child process of src/converters/llama-cpp-quantize.ts: calls llama.cpp's `llama_model_quantize` through koffi.
//
// Plain ESM run by `node` (no tsx: start-up is ~40 ms instead of ~400 ms), and a process of its own because
// ggml aborts the whole process on some inputs (GGML_ASSERT / GGML_ABORT → SIGABRT): the parent turns that
// into a failed ConvertResult instead of losing the harness.
//
// Usage: node llama-cpp-quantize-child.mjs '<json>' where json is
//   { lib, inGguf, outGguf, ftype, pure, nthread }
// Prints one JSON line `{ rc, durationMs, defaults }` on stdout; exits 0 iff llama_model_quantize returned 0, 3 when the
// library's params struct does not read back as the expected release's (`{ layoutMismatch }`).
// llama.cpp's own per-tensor log goes to stderr, unchanged.
import { performance } from 'node:perf_hooks';
import koffi from 'koffi';

// ggml's abort handler otherwise attaches gdb for a backtrace (~5 s per abort here); the GGML_ASSERT line it prints
// first is what a converter's author needs, and it stays at the end of the log tail.
process.env.GGML_NO_BACKTRACE = '1';

const job = JSON.parse(process.argv[2] ?? '{}');
const lib = koffi.load(job.lib);

// Layout from include/llama.h of the llama.cpp release node-llama-cpp 3.21.1 ships (tag v0.4.0, gitRelease.bundle).
// The enums are C ints; the four pointers stay NULL (no imatrix, no overrides, no pruning). Registered by name: the
// signatures below refer to it as 'llama_model_quantize_params', so the returned type object is not kept.
koffi.struct('llama_model_quantize_params', {
  nthread: 'int32_t',
  ftype: 'int',
  output_tensor_type: 'int',
  token_embedding_type: 'int',
  allow_requantize: 'bool',
  quantize_output_tensor: 'bool',
  only_copy: 'bool',
  pure: 'bool',
  keep_split: 'bool',
  dry_run: 'bool',
  imatrix: 'void *',
  kv_overrides: 'void *',
  tt_overrides: 'void *',
  prune_layers: 'void *',
  max_buf_size: 'size_t',
});

const backendInit = lib.func('void llama_backend_init(void)');
const defaultParams = lib.func('llama_model_quantize_params llama_model_quantize_default_params(void)');
const quantize = lib.func(
  'uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const llama_model_quantize_params *params)',
);

// Layout canary: the defaults of the release the struct above was copied from, read back through that struct. A
// library whose struct differs (another llama.cpp release) would read back something else; exit 3 instead of
// passing it misplaced fields. output_tensor_type / token_embedding_type 43 = GGML_TYPE_COUNT ("unset") there.
const EXPECTED_DEFAULTS = {
  nthread: 0,
  ftype: 7,
  output_tensor_type: 43,
  token_embedding_type: 43,
  allow_requantize: false,
  quantize_output_tensor: true,
  only_copy: false,
  pure: false,
  keep_split: false,
  dry_run: false,
  imatrix: null,
  kv_overrides: null,
  tt_overrides: null,
  prune_layers: null,
  max_buf_size: 8 * 1024 ** 3,
};
const LAYOUT_MISMATCH_EXIT = 3;

backendInit();
// Start from the library's own defaults, as the llama-quantize CLI does, and change only what the CLI's flags would.
const params = defaultParams();
const defaults = { ...params };
const mismatched = Object.entries(EXPECTED_DEFAULTS).filter(([k, v]) => params[k] !== v && Number(params[k]) !== v);
if (mismatched.length > 0) {
  const got = mismatched.map(([k, v]) => `${k}=${String(params[k])} (expected ${String(v)})`).join(', ');
  process.stdout.write(JSON.stringify({ layoutMismatch: got }) + '\n');
  process.exit(LAYOUT_MISMATCH_EXIT);
}
params.ftype = job.ftype;
params.pure = job.pure === true;
params.nthread = job.nthread ?? 0;

const start = performance.now();
const rc = quantize(job.inGguf, job.outGguf, params);
const durationMs = performance.now() - start;
process.stdout.write(JSON.stringify({ rc, durationMs, defaults }) + '\n');
process.exitCode = rc === 0 ? 0 : 1;
