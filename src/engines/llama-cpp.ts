/**
 * llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU libllama) as a second engine adapter, for the cross-runtime
 * claim (F-CROSS-RUNTIME-001): the same GGUF artifact through the bundled engine and through llama.cpp.
 * This is the only module in src that imports node-llama-cpp.
 *
 * Two paths to the same llama.cpp computation:
 * - 'ffi' (the default): llama.cpp's raw logits through its C API (llama-cpp-ffi.ts, koffi on the libllama
 *   node-llama-cpp ships). One decode per sequence and one copy of `vocab` floats per position, whatever the
 *   vocabulary size.
 * - 'node-llama-cpp' (the fallback, when that library is missing or its structs do not read back as the release
 *   they were copied from; or forced with TMGT_LLAMA_CPP_API=node-llama-cpp): node-llama-cpp does not hand out
 *   logits, only the next-token distribution (the addon's softmax of the logits in f32, `AddonContext.cpp`
 *   SampleToken, with the greedy sampler that temperature 0 selects, which leaves every candidate in place), as a JS
 *   array of `vocab` pairs per position (~100 ms per position at 32,000 ids). The adapter returns log p as the row's
 *   "logits". A probability that underflowed to 0 in f32 becomes log(1e-45) (the smallest f32 subnormal), never
 *   −Infinity; such a token carries no weight in KL(bundled ‖ llama.cpp) unless the bundled engine gives it mass,
 *   and then it should count.
 * log-softmax is invariant to a per-row constant, so the two paths' rows are the same distribution
 * (test/engines/llama-cpp-logits.test.ts: KL ≤ 1e-9 per position, identical greedy ids) and every KL/top-1 metric
 * reads either as it reads real logits.
 */
import { performance } from 'node:perf_hooks';
import type { ControlledEvaluateInputItem, Llama, LlamaContext, LlamaModel, Token } from 'node-llama-cpp';
import { errorMessage } from '../errors.js';
import { loadLlamaFfi, runLlamaFfi } from './llama-cpp-ffi.js';
import type { EngineRequest, EngineResult, EngineSequenceResult } from './types.js';

/** Engine name in results and verdicts. */
export const LLAMA_CPP_ENGINE = 'llama.cpp';

/** log of the smallest positive f32: where a probability that underflowed to 0 lands. */
const LOG_P_FLOOR = Math.log(1.401298464324817e-45);

/** The tail of llama.cpp's own log (warnings and errors), kept for failure messages. */
const LOG_TAIL_LINES = 20;

/** A vocabulary id as node-llama-cpp's `Token`. */
function asToken(id: number): Token {
  return id as Token; // Token is a branded number (a compile-time tag only): any vocabulary id is one
}

/** The two ways to llama.cpp (see the module comment). */
export type LlamaCppPath = 'ffi' | 'node-llama-cpp';

/** Which path a request takes without `path`, and why when it is not 'ffi'. */
export function defaultLlamaCppPath(): { path: LlamaCppPath; reason?: string } {
  if (process.env['TMGT_LLAMA_CPP_API'] === 'node-llama-cpp')
    return { path: 'node-llama-cpp', reason: 'TMGT_LLAMA_CPP_API=node-llama-cpp' };
  const ffi = loadLlamaFfi();
  return ffi.available ? { path: 'ffi' } : { path: 'node-llama-cpp', reason: ffi.reason };
}

/** Where llama.cpp's log lines go on the node-llama-cpp path: the log of the request in progress. */
let currentLog: string[] = [];
let shared: Promise<Llama> | undefined;

/**
 * One Llama (the native backend) per process. llama.cpp's log callback is process-wide: a second instance
 * after the first is disposed leaves it unbound, and llama.cpp then prints to stdout, into tmgt's output.
 * node-llama-cpp is imported only here: the raw-logits path never pays for loading it.
 */
function sharedLlama(): Promise<Llama> {
  shared ??= import('node-llama-cpp').then(({ getLlama, LlamaLogLevel }) =>
    getLlama({
      gpu: false,
      build: 'never',
      // No progress output, no other console noise: the adapter is quiet and keeps llama.cpp's words.
      progressLogs: false,
      logLevel: LlamaLogLevel.warn,
      logger: (_level, message) => currentLog.push(message.trim()),
      maxThreads: 1,
    }),
  );
  return shared;
}

/**
 * Run the request through llama.cpp: load the artifact once, one context of one sequence on one thread,
 * then for each sequence (1) teacher-force it in one decode with every position's next-token row, and (2) when
 * `maxNewTokens` > 0, decode greedily from its first `promptLengths[i]` tokens as llama.cpp's greedy sampler does
 * (temperature 0, no penalties, ties to the lowest id), through end-of-generation tokens as the oracle does.
 * `path` picks the way in (default: `defaultLlamaCppPath()`; asking for 'ffi' when it is unavailable is a failure).
 *
 * Never throws for llama.cpp's failures: a file it refuses is `{status: 'failed'}` whose message carries
 * llama.cpp's own log lines (WARN and ERROR). Everything it allocates (context, model, batch) is freed before
 * returning. `captureLayers` is not supported (llama.cpp's hidden states are not reachable through either path);
 * results carry no layerOutputs.
 */
export async function runLlamaCppEngine(req: EngineRequest, path?: LlamaCppPath): Promise<EngineResult> {
  const start = performance.now();
  const engine = LLAMA_CPP_ENGINE;
  const log: string[] = [];
  const failed = (e: unknown): EngineResult => {
    const own = log
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .slice(-LOG_TAIL_LINES);
    const message = [errorMessage(e), ...own].join(' | ');
    return { status: 'failed', engine, message, durationMs: performance.now() - start };
  };
  if (req.format !== 'gguf') return failed(new Error(`llama.cpp runs GGUF files only, not ${req.format}`));
  if ((path ?? defaultLlamaCppPath().path) === 'ffi') {
    const ffi = loadLlamaFfi();
    if (!ffi.available) return failed(new Error(`llama.cpp's C API is unavailable: ${ffi.reason}`));
    try {
      const sequences = runLlamaFfi(ffi.ffi, req, log);
      return { status: 'ok', engine, sequences, durationMs: performance.now() - start };
    } catch (e) {
      return failed(e);
    }
  }
  return runNodeLlamaCpp(req, start, log, failed);
}

/**
 * The node-llama-cpp path: `controlledEvaluate` with `generateNext.probabilities` (`evaluateWithMetadata`'s per-token
 * form: one decode, every position), log p as the rows; greedy by node-llama-cpp's sampler at temperature 0. A missing
 * file or a header node-llama-cpp's own GGUF parser rejects fails before llama.cpp, with that parser's error.
 */
async function runNodeLlamaCpp(
  req: EngineRequest,
  start: number,
  log: string[],
  failed: (e: unknown) => EngineResult,
): Promise<EngineResult> {
  const engine = LLAMA_CPP_ENGINE;
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  try {
    llama = await sharedLlama();
    currentLog = log;
    model = await llama.loadModel({ modelPath: req.artifact, gpuLayers: 0 });
    const longest = Math.max(
      1,
      ...req.sequences.map((ids, i) => Math.max(ids.length, (req.promptLengths[i] ?? ids.length) + req.maxNewTokens)),
    );
    context = await model.createContext({
      // node-llama-cpp keeps one cell free (`_decodeTokens`: free space = contextSize − 1 − next index) and
      // shifts the context (erases its beginning) to make room otherwise, which silently changes the last
      // position's history: measured, the last row of a sequence that filled the context was at KL 0.44.
      contextSize: longest + 1,
      // One batch holds a whole sequence, so teacher forcing is one decode as in `llama-perplexity`.
      batchSize: longest,
      sequences: 1,
      threads: { ideal: 1, min: 1 },
      // llama.cpp's defaults otherwise, as users run it: K/V cache in F16, flash attention 'auto' (on, on
      // CPU). Measured on the zoo's f32 and q8_0 artifacts, an F32 K/V cache (experimentalKvCache*Type)
      // left the mean KL to the bundled engine unchanged to 3 digits, so the defaults stay.
    });
    const vocab = vocabSize(model);
    const sequence = context.getSequence();
    const sequences: EngineSequenceResult[] = [];
    for (const [s, ids] of req.sequences.entries()) {
      await sequence.clearHistory();
      const out = await sequence.controlledEvaluate(ids.map((id) => [asToken(id), { generateNext: { probabilities: true } }]));
      if (sequence.nextTokenIndex !== ids.length)
        throw new Error(`llama.cpp holds ${sequence.nextTokenIndex} tokens after evaluating ${ids.length} (context shift)`);
      const logits = new Float32Array(ids.length * vocab);
      for (let t = 0; t < ids.length; t++) {
        const p = out[t]?.next.probabilities;
        if (p === undefined) throw new Error(`llama.cpp returned no distribution at position ${t}`);
        if (p.size !== vocab) throw new Error(`llama.cpp returned ${p.size} probabilities at position ${t}, vocabulary has ${vocab}`);
        const row = logits.subarray(t * vocab, (t + 1) * vocab);
        row.fill(LOG_P_FLOOR);
        for (const [token, prob] of p) if (prob > 0 && token < vocab) row[token] = Math.log(prob);
      }
      const greedyIds: number[] = [];
      if (req.maxNewTokens > 0) {
        await sequence.clearHistory();
        const promptLength = req.promptLengths[s] ?? ids.length;
        // Greedy by llama.cpp's own sampler; the last input token asks for the next one, which is fed back.
        const ask = (id: number): ControlledEvaluateInputItem => [
          asToken(id),
          { generateNext: { token: true, options: { temperature: 0 } } },
        ];
        let items: ControlledEvaluateInputItem[] = [...ids.slice(0, promptLength - 1).map(asToken), ask(ids[promptLength - 1] ?? 0)];
        for (let i = 0; i < req.maxNewTokens; i++) {
          const res = await sequence.controlledEvaluate(items);
          const next = res[items.length - 1]?.next.token;
          if (next === undefined || next === null) throw new Error(`llama.cpp produced no greedy token at step ${i}`);
          greedyIds.push(next);
          items = [ask(next)];
        }
      }
      sequences.push({ ids, logits, vocabSize: vocab, greedyIds });
    }
    return { status: 'ok', engine, sequences, durationMs: performance.now() - start };
  } catch (e) {
    return failed(e);
  } finally {
    await context?.dispose();
    await model?.dispose();
    currentLog = [];
  }
}

/** n_vocab as llama.cpp loaded it: the length of `tokenizer.ggml.tokens`. */
function vocabSize(model: LlamaModel): number {
  // node-llama-cpp types the metadata as always present; a file without it must still fail cleanly.
  const tokens: readonly string[] | undefined = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (tokens === undefined || tokens.length === 0) throw new Error('llama.cpp loaded a model without tokenizer.ggml.tokens');
  return tokens.length;
}
