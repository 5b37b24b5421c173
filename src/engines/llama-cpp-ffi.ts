/**
 * llama.cpp's raw logits through its C API: the libllama that node-llama-cpp 3.21.1 ships prebuilt (llama.cpp
 * release v0.4.0 of node-llama-cpp's bundle), called through koffi. node-llama-cpp hands out a next-token
 * distribution as a JS array of (token, p) pairs per position (softmaxed, sorted, then made a Map): ~100 ms per
 * position at a 32,000-id vocabulary. Here one `llama_decode` per sequence, then one copy of `vocab` floats per
 * position, which costs what the decode costs.
 *
 * The calls mirror what node-llama-cpp's addon does for the adapter's requests (AddonModel.cpp, AddonContext.cpp,
 * `controlledEvaluate`), so the numbers are the same llama.cpp computation: model params = llama.cpp's defaults
 * with no GPU layers, mmap, lazy loading off; context params = llama.cpp's defaults (f16 K/V cache, flash attention
 * auto) with n_ctx = longest + 1, n_batch = n_ubatch = longest, one sequence, one thread, swa_full off.
 *
 * Structs larger than 16 bytes travel in memory on x86-64, so each is declared field by field from include/llama.h
 * of that release, and `loadLlamaFfi` refuses the library (the caller falls back to node-llama-cpp) unless its
 * `llama_model_default_params` / `llama_context_default_params` read back as that release's
 * (`llama_model_default_params` in src/llama-model.cpp, `llama_context_default_params` in src/llama-context.cpp)
 * and its file name carries that release.
 *
 * Process-wide native state (the ggml backend registry, llama.cpp's log callback) is shared with node-llama-cpp
 * when both run in one process: the CPU backend is loaded only when none is registered yet, and the log callback
 * is installed for the duration of a request only, the previous one restored after.
 */
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, sep } from 'node:path';
import koffi from 'koffi';
import type { EngineRequest, EngineSequenceResult } from './types.js';

/** The llama.cpp release the structs below are copied from (node-llama-cpp 3.21.1's `llama/binariesGithubRelease.json`). */
export const LLAMA_FFI_RELEASE = 'v0.4.0';

/** A C pointer: koffi 3 passes pointers as BigInt, NULL as null. */
type Pointer = bigint;
/** A C struct as koffi decodes it (field name → value); the canary below checks the fields' values. */
type CStruct = Record<string, unknown>;

/** `struct llama_batch` as koffi decodes it: n_tokens and the seven arrays llama_batch_init allocates. */
interface Batch {
  n_tokens: number;
  token: Pointer | null;
  embd: Pointer | null;
  pos: Pointer | null;
  n_seq_id: Pointer | null;
  seq_id: Pointer | null;
  logits: Pointer | null;
}

/** include/llama.h of v0.4.0, `struct llama_model_params`: enums are C ints; 80 bytes. */
const MODEL_PARAMS = {
  devices: 'void *',
  tensor_buft_overrides: 'void *',
  n_gpu_layers: 'int32_t',
  split_mode: 'int',
  load_mode: 'int',
  lazy_mode: 'int',
  main_gpu: 'int32_t',
  tensor_split: 'void *',
  progress_callback: 'void *',
  progress_callback_user_data: 'void *',
  kv_overrides: 'void *',
  vocab_only: 'bool',
  check_tensors: 'bool',
  use_extra_bufts: 'bool',
  no_host: 'bool',
  no_alloc: 'bool',
  load_mtp: 'bool',
} as const;

/** include/llama.h of v0.4.0, `struct llama_context_params`; 160 bytes. */
const CONTEXT_PARAMS = {
  n_ctx: 'uint32_t',
  n_batch: 'uint32_t',
  n_ubatch: 'uint32_t',
  n_seq_max: 'uint32_t',
  n_rs_seq: 'uint32_t',
  n_outputs_max: 'uint32_t',
  n_outputs_max_per_seq: 'uint32_t',
  n_threads: 'int32_t',
  n_threads_batch: 'int32_t',
  ctx_type: 'int',
  rope_scaling_type: 'int',
  pooling_type: 'int',
  attention_type: 'int',
  flash_attn_type: 'int',
  rope_freq_base: 'float',
  rope_freq_scale: 'float',
  yarn_ext_factor: 'float',
  yarn_attn_factor: 'float',
  yarn_beta_fast: 'float',
  yarn_beta_slow: 'float',
  yarn_orig_ctx: 'uint32_t',
  defrag_thold: 'float',
  cb_eval: 'void *',
  cb_eval_user_data: 'void *',
  type_k: 'int',
  type_v: 'int',
  abort_callback: 'void *',
  abort_callback_data: 'void *',
  embeddings: 'bool',
  offload_kqv: 'bool',
  no_perf: 'bool',
  op_offload: 'bool',
  swa_full: 'bool',
  kv_unified: 'bool',
  samplers: 'void *',
  n_samplers: 'size_t',
  ctx_other: 'void *',
} as const;

/** include/llama.h of v0.4.0, `struct llama_batch`; 56 bytes. */
const BATCH = {
  n_tokens: 'int32_t',
  token: 'void *',
  embd: 'void *',
  pos: 'void *',
  n_seq_id: 'void *',
  seq_id: 'void *',
  logits: 'void *',
} as const;

/** Sizes of the three structs on a 64-bit ABI, as the C compiler lays them out (a check of the declarations above). */
const STRUCT_SIZES = { model: 80, context: 160, batch: 56 } as const;

/** `llama_model_default_params()` of v0.4.0 (src/llama-model.cpp). */
const EXPECTED_MODEL_DEFAULTS = {
  devices: null,
  tensor_buft_overrides: null,
  n_gpu_layers: -1,
  split_mode: 1, // LLAMA_SPLIT_MODE_LAYER
  load_mode: -1, // LLAMA_LOAD_MODE_AUTO
  lazy_mode: 1, // LLAMA_LAZY_MODE_AUTO
  main_gpu: 0,
  tensor_split: null,
  progress_callback: null,
  progress_callback_user_data: null,
  kv_overrides: null,
  vocab_only: false,
  check_tensors: false,
  use_extra_bufts: true,
  no_host: false,
  no_alloc: false,
  load_mtp: false,
} as const satisfies Record<keyof typeof MODEL_PARAMS, unknown>;

/** `llama_context_default_params()` of v0.4.0 (src/llama-context.cpp). */
const EXPECTED_CONTEXT_DEFAULTS = {
  n_ctx: 512,
  n_batch: 2048,
  n_ubatch: 512,
  n_seq_max: 1,
  n_rs_seq: 0,
  n_outputs_max: 0,
  n_outputs_max_per_seq: 1,
  n_threads: 4, // GGML_DEFAULT_N_THREADS
  n_threads_batch: 4,
  ctx_type: 0,
  rope_scaling_type: -1,
  pooling_type: -1,
  attention_type: -1,
  flash_attn_type: -1, // LLAMA_FLASH_ATTN_TYPE_AUTO
  rope_freq_base: 0,
  rope_freq_scale: 0,
  yarn_ext_factor: -1,
  yarn_attn_factor: -1,
  yarn_beta_fast: -1,
  yarn_beta_slow: -1,
  yarn_orig_ctx: 0,
  defrag_thold: -1,
  cb_eval: null,
  cb_eval_user_data: null,
  type_k: 1, // GGML_TYPE_F16
  type_v: 1,
  abort_callback: null,
  abort_callback_data: null,
  embeddings: false,
  offload_kqv: true,
  no_perf: true,
  op_offload: true,
  swa_full: true,
  kv_unified: false,
  samplers: null,
  n_samplers: 0,
  ctx_other: null,
} as const satisfies Record<keyof typeof CONTEXT_PARAMS, unknown>;

/** LLAMA_LOAD_MODE_MMAP and LLAMA_LAZY_MODE_OFF: what node-llama-cpp's loadModel passes by default. */
const LOAD_MODE_MMAP = 1;
const LAZY_MODE_OFF = 0;

/** enum ggml_log_level: WARN and above are kept (node-llama-cpp's `LlamaLogLevel.warn`); CONT continues the previous message. */
const LOG_LEVEL_WARN = 3;
const LOG_LEVEL_CONT = 5;

/** The bound C API. */
interface LlamaApi {
  modelDefaultParams: () => CStruct;
  contextDefaultParams: () => CStruct;
  modelLoad: (path: string, params: CStruct) => Pointer | null;
  modelFree: (model: Pointer) => void;
  initFromModel: (model: Pointer, params: CStruct) => Pointer | null;
  free: (ctx: Pointer) => void;
  modelGetVocab: (model: Pointer) => Pointer | null;
  vocabNTokens: (vocab: Pointer) => number;
  batchInit: (nTokens: number, embd: number, nSeqMax: number) => Batch;
  batchFree: (batch: Batch) => void;
  decode: (ctx: Pointer, batch: Batch) => number;
  getLogitsIth: (ctx: Pointer, i: number) => Pointer | null;
  getMemory: (ctx: Pointer) => Pointer | null;
  memoryClear: (mem: Pointer, data: boolean) => void;
  logGet: (callback: [Pointer | null], userData: [Pointer | null]) => void;
  logSet: (callback: Pointer | null, userData: Pointer | null) => void;
}

/** A usable library: the bound API and llama.cpp's log callback (registered once per process). */
export interface LlamaFfi {
  library: string;
  api: LlamaApi;
  logCallback: Pointer;
}

/** Whether the raw-logits path can run in this process, and if not why (the caller then uses node-llama-cpp). */
export type LlamaFfiStatus = { available: true; ffi: LlamaFfi } | { available: false; reason: string };

/** Where llama.cpp's WARN/ERROR lines go while a request runs (undefined: dropped). */
let logSink: string[] | undefined;
let lastLogLevel = 0;

function onLog(level: number, text: string | null): void {
  if (logSink === undefined || text === null) return;
  if (level === LOG_LEVEL_CONT) {
    // a continuation belongs to the message before it: kept iff that one was
    if (lastLogLevel >= LOG_LEVEL_WARN && lastLogLevel !== LOG_LEVEL_CONT && logSink.length > 0) logSink[logSink.length - 1] += text;
    return;
  }
  lastLogLevel = level;
  if (level >= LOG_LEVEL_WARN) logSink.push(text);
}

/**
 * node-llama-cpp's prebuilt CPU binaries for this platform (`@node-llama-cpp/<platform>-<arch>/bins/<platform>-<arch>/`),
 * resolved the way Node resolves packages from here (the same lookup as src/converters/llama-cpp-quantize.ts, which
 * this layer may not import).
 */
function locateBins(): { dir: string } | { reason: string } {
  const platform = process.platform === 'darwin' ? 'mac' : process.platform === 'win32' ? 'win' : process.platform;
  const flavour = `${platform}-${process.arch}`;
  const pkg = `@node-llama-cpp/${flavour}`;
  let entry: string;
  try {
    entry = createRequire(createRequire(import.meta.url).resolve('node-llama-cpp')).resolve(pkg);
  } catch {
    return { reason: `node-llama-cpp or its prebuilt package ${pkg} is not installed` };
  }
  const marker = `${sep}node_modules${sep}${pkg.split('/').join(sep)}${sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) return { reason: `cannot tell the package directory of ${pkg} from ${entry}` };
  const dir = join(entry.slice(0, at + marker.length - 1), 'bins', flavour);
  return existsSync(dir) ? { dir } : { reason: `${pkg} has no ${dir}` };
}

/** `<prefix><name>.<release>.so` (or unversioned) in `dir`; libllama's and libggml's names carry the release. */
function findLibrary(dir: string, name: 'llama' | 'ggml'): string | undefined {
  const pattern = new RegExp(`^(lib)?${name}(\\.v[0-9.]+)?\\.(so|dylib|dll)$`);
  const found = readdirSync(dir)
    .filter((n) => pattern.test(n))
    .sort();
  return found[0] === undefined ? undefined : join(dir, found[0]);
}

/** Fields of `got` that differ from `expected` (numbers compared as numbers: size_t may come back as a BigInt). */
function mismatches(got: CStruct, expected: Record<string, unknown>): string[] {
  return Object.entries(expected)
    .filter(([k, v]) => {
      const g = got[k];
      return g !== v && !(typeof v === 'number' && (typeof g === 'number' || typeof g === 'bigint') && Number(g) === v);
    })
    .map(([k, v]) => `${k}=${String(got[k])} (expected ${String(v)})`);
}

/**
 * Run `f` with llama.cpp's (and ggml's) log going to `sink` (undefined: dropped), then restore whatever callback was
 * installed before (node-llama-cpp's, when it runs in the same process, or llama.cpp's default, stderr).
 */
function withLogTo<T>(api: LlamaApi, callback: Pointer, sink: string[] | undefined, f: () => T): T {
  const prevCallback: [Pointer | null] = [null];
  const prevUserData: [Pointer | null] = [null];
  api.logGet(prevCallback, prevUserData);
  logSink = sink;
  lastLogLevel = 0;
  api.logSet(callback, null);
  try {
    return f();
  } finally {
    api.logSet(prevCallback[0], prevUserData[0]);
    logSink = undefined;
  }
}

let loaded: LlamaFfiStatus | undefined;

/**
 * Load and check the library once per process. Unavailable (never a throw) when node-llama-cpp's prebuilt package
 * is missing, its libllama is of another release, the structs do not read back as v0.4.0's defaults, or no CPU
 * backend can be registered.
 */
export function loadLlamaFfi(): LlamaFfiStatus {
  loaded ??= tryLoad();
  return loaded;
}

function tryLoad(): LlamaFfiStatus {
  const unavailable = (reason: string): LlamaFfiStatus => ({ available: false, reason });
  const bins = locateBins();
  if ('reason' in bins) return unavailable(bins.reason);
  const llamaPath = findLibrary(bins.dir, 'llama');
  const ggmlPath = findLibrary(bins.dir, 'ggml');
  if (llamaPath === undefined || ggmlPath === undefined) return unavailable(`no libllama/libggml in ${bins.dir}`);
  if (!basename(llamaPath).includes(`.${LLAMA_FFI_RELEASE}.`))
    return unavailable(`${llamaPath} is not llama.cpp ${LLAMA_FFI_RELEASE}, the release whose llama.h the structs are copied from`);
  // ggml's abort handler otherwise attaches gdb for a backtrace (seconds per abort); its GGML_ASSERT line is what matters.
  process.env['GGML_NO_BACKTRACE'] = '1';
  try {
    const ggml = koffi.load(ggmlPath);
    const lib = koffi.load(llamaPath);
    const modelParams = koffi.struct(MODEL_PARAMS);
    const contextParams = koffi.struct(CONTEXT_PARAMS);
    const batch = koffi.struct(BATCH);
    const sizes = { model: modelParams.size, context: contextParams.size, batch: batch.size };
    if (sizes.model !== STRUCT_SIZES.model || sizes.context !== STRUCT_SIZES.context || sizes.batch !== STRUCT_SIZES.batch)
      return unavailable(`struct sizes ${JSON.stringify(sizes)} differ from the C layout ${JSON.stringify(STRUCT_SIZES)}`);
    const logProto = koffi.proto('void tmgt_llama_log_callback(int level, const char *text, void *user_data)');
    const api: LlamaApi = {
      modelDefaultParams: lib.func('llama_model_default_params', modelParams, []),
      contextDefaultParams: lib.func('llama_context_default_params', contextParams, []),
      modelLoad: lib.func('llama_model_load_from_file', 'void *', ['const char *', modelParams]),
      modelFree: lib.func('void llama_model_free(void *model)'),
      initFromModel: lib.func('llama_init_from_model', 'void *', ['void *', contextParams]),
      free: lib.func('void llama_free(void *ctx)'),
      modelGetVocab: lib.func('void *llama_model_get_vocab(void *model)'),
      vocabNTokens: lib.func('int32_t llama_vocab_n_tokens(void *vocab)'),
      batchInit: lib.func('llama_batch_init', batch, ['int32_t', 'int32_t', 'int32_t']),
      batchFree: lib.func('llama_batch_free', 'void', [batch]),
      decode: lib.func('llama_decode', 'int32_t', ['void *', batch]),
      getLogitsIth: lib.func('void *llama_get_logits_ith(void *ctx, int32_t i)'),
      getMemory: lib.func('void *llama_get_memory(void *ctx)'),
      memoryClear: lib.func('void llama_memory_clear(void *mem, bool data)'),
      logGet: lib.func('void llama_log_get(_Out_ void **callback, _Out_ void **user_data)'),
      logSet: lib.func('void llama_log_set(void *callback, void *user_data)'),
    };
    const wrong = [
      ...mismatches(api.modelDefaultParams(), EXPECTED_MODEL_DEFAULTS).map((m) => `llama_model_params.${m}`),
      ...mismatches(api.contextDefaultParams(), EXPECTED_CONTEXT_DEFAULTS).map((m) => `llama_context_params.${m}`),
    ];
    if (wrong.length > 0)
      return unavailable(`${llamaPath}: defaults do not read back as llama.h of ${LLAMA_FFI_RELEASE}: ${wrong.join(', ')}`);
    const logCallback: Pointer = koffi.register(onLog, koffi.pointer(logProto));
    // The CPU backend is a plugin (libggml-cpu-<variant>.so, the best one for this CPU): load it as node-llama-cpp
    // does, unless node-llama-cpp already did in this process (loading twice would register two CPU devices). Its
    // "loaded CPU backend" line would go to stderr: the callback (with no sink) drops it.
    const regByName: (name: string) => Pointer | null = ggml.func('void *ggml_backend_reg_by_name(const char *name)');
    const loadAll: (dir: string) => void = ggml.func('void ggml_backend_load_all_from_path(const char *dir)');
    if (regByName('CPU') === null) withLogTo(api, logCallback, undefined, () => loadAll(bins.dir));
    if (regByName('CPU') === null) return unavailable(`no ggml CPU backend could be loaded from ${bins.dir}`);
    const backendInit: () => void = lib.func('void llama_backend_init(void)');
    backendInit();
    return { available: true, ffi: { library: llamaPath, api, logCallback } };
  } catch (e) {
    return unavailable(`${llamaPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Index of the first largest value of `row` (llama.cpp's greedy sampler: strict `>`, so ties go to the lowest id). */
export function argmaxFirst(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] ?? -Infinity) > (row[best] ?? -Infinity)) best = i;
  return best;
}

/** What a decode writes: the batch llama_batch_init allocated and typed views of its arrays. */
interface BatchViews {
  batch: Batch;
  token: Int32Array;
  pos: Int32Array;
  logits: Int8Array;
}

function batchViews(api: LlamaApi, capacity: number): BatchViews {
  const batch = api.batchInit(capacity, 0, 1);
  const { token, pos, n_seq_id, seq_id, logits } = batch;
  if (token === null || pos === null || n_seq_id === null || seq_id === null || logits === null) {
    api.batchFree(batch);
    throw new Error(`llama_batch_init(${capacity}, 0, 1) returned NULL arrays`);
  }
  // Every position belongs to sequence 0, set once: llama_batch_init leaves the arrays uninitialised.
  new Int32Array(koffi.view(n_seq_id, capacity * 4)).fill(1);
  const seqIds = new BigUint64Array(koffi.view(seq_id, capacity * 8));
  for (const p of seqIds) new Int32Array(koffi.view(p, 4))[0] = 0;
  return {
    batch,
    token: new Int32Array(koffi.view(token, capacity * 4)),
    pos: new Int32Array(koffi.view(pos, capacity * 4)),
    logits: new Int8Array(koffi.view(logits, capacity)),
  };
}

/**
 * Decode `ids` at positions `start`, `start + 1`, …; rows are requested for every position (`allRows`) or for the
 * last one only. Throws on llama_decode's failure.
 */
function decode(api: LlamaApi, ctx: Pointer, b: BatchViews, ids: readonly number[], start: number, allRows: boolean): void {
  b.token.set(ids);
  for (let i = 0; i < ids.length; i++) {
    b.pos[i] = start + i;
    b.logits[i] = allRows || i === ids.length - 1 ? 1 : 0;
  }
  b.batch.n_tokens = ids.length;
  const rc = api.decode(ctx, b.batch);
  if (rc !== 0) throw new Error(`llama_decode returned ${rc} for ${ids.length} tokens at position ${start}`);
}

/** Copy output row `i` of the last decode (`vocab` floats); throws when llama.cpp has none. */
function logitsRow(api: LlamaApi, ctx: Pointer, i: number, vocab: number, into: Float32Array): void {
  const p = api.getLogitsIth(ctx, i);
  if (p === null) throw new Error(`llama_get_logits_ith(${i}) returned NULL`);
  into.set(new Float32Array(koffi.view(p, vocab * 4)));
}

/**
 * Run the request through llama.cpp's C API, synchronously: load the artifact, one context of one sequence on one
 * thread, then per sequence (1) teacher-force it in one decode with every position's logits copied out, and (2) when
 * `maxNewTokens` > 0, decode its first `promptLengths[i]` tokens (last row only) and continue by argmax, one token per
 * decode, as llama.cpp's greedy sampler does; the memory is cleared before each. llama.cpp's WARN/ERROR lines go to
 * `log`. Throws for llama.cpp's failures (a NULL model or context, a failed decode); frees everything it allocated.
 */
export function runLlamaFfi(ffi: LlamaFfi, req: EngineRequest, log: string[]): EngineSequenceResult[] {
  const { api } = ffi;
  // llama.cpp's own message for a missing file is one of several lines; the path is what a reader needs.
  if (!existsSync(req.artifact)) throw new Error(`no such file: ${req.artifact}`);
  return withLogTo(api, ffi.logCallback, log, () => run(api, req));
}

function run(api: LlamaApi, req: EngineRequest): EngineSequenceResult[] {
  let model: Pointer | null = null;
  let ctx: Pointer | null = null;
  let b: BatchViews | undefined;
  try {
    const mp = api.modelDefaultParams();
    mp['n_gpu_layers'] = 0;
    mp['load_mode'] = LOAD_MODE_MMAP;
    mp['lazy_mode'] = LAZY_MODE_OFF;
    model = api.modelLoad(req.artifact, mp);
    if (model === null) throw new Error(`llama.cpp could not load ${req.artifact}`);
    const longest = Math.max(
      1,
      ...req.sequences.map((ids, i) => Math.max(ids.length, (req.promptLengths[i] ?? ids.length) + req.maxNewTokens)),
    );
    const cp = api.contextDefaultParams();
    // One cell more than the longest sequence, as the node-llama-cpp path needs (it keeps one free); llama.cpp pads
    // n_ctx to 256 anyway. One batch holds a whole sequence, so teacher forcing is one decode.
    cp['n_ctx'] = longest + 1;
    cp['n_batch'] = longest;
    cp['n_ubatch'] = longest;
    cp['n_seq_max'] = 1;
    cp['n_threads'] = 1;
    cp['n_threads_batch'] = 1;
    cp['swa_full'] = false; // node-llama-cpp's and llama-cli's default (llama.h's is true)
    ctx = api.initFromModel(model, cp);
    if (ctx === null) throw new Error(`llama.cpp could not create a context for ${req.artifact}`);
    const vocabPtr = api.modelGetVocab(model);
    const vocab = vocabPtr === null ? 0 : api.vocabNTokens(vocabPtr);
    if (vocab <= 0) throw new Error(`llama.cpp loaded a model without a vocabulary (${vocab} tokens)`);
    const memory = api.getMemory(ctx);
    if (memory === null) throw new Error('llama.cpp context has no memory');
    b = batchViews(api, longest);
    const sequences: EngineSequenceResult[] = [];
    for (const [s, ids] of req.sequences.entries()) {
      // data = true: the cells are zeroed as in a fresh context, not only marked free
      api.memoryClear(memory, true);
      const logits = new Float32Array(ids.length * vocab);
      if (ids.length > 0) {
        decode(api, ctx, b, ids, 0, true);
        for (let t = 0; t < ids.length; t++) logitsRow(api, ctx, t, vocab, logits.subarray(t * vocab, (t + 1) * vocab));
      }
      const greedyIds: number[] = [];
      const promptLength = req.promptLengths[s] ?? ids.length;
      if (req.maxNewTokens > 0 && promptLength > 0) {
        api.memoryClear(memory, true);
        const row = new Float32Array(vocab);
        decode(api, ctx, b, ids.slice(0, promptLength), 0, false);
        for (let i = 0; i < req.maxNewTokens; i++) {
          logitsRow(api, ctx, -1, vocab, row);
          const next = argmaxFirst(row);
          greedyIds.push(next);
          if (i + 1 < req.maxNewTokens) decode(api, ctx, b, [next], promptLength + i, true);
        }
      }
      sequences.push({ ids, logits, vocabSize: vocab, greedyIds });
    }
    return sequences;
  } finally {
    if (b !== undefined) api.batchFree(b.batch);
    if (ctx !== null) api.free(ctx);
    if (model !== null) api.modelFree(model);
  }
}
