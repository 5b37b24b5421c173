/**
 * The cell context: everything a claim may need about one cell (converter × model × target × engine), each
 * expensive piece built lazily and at most once — the conversion, the read file, the expected tensor manifest,
 * the oracle records, the bundled-engine run, the llama.cpp run. A piece that cannot be had throws a
 * `PrerequisiteFailed` carrying the verdict that says why (F-RUNTIME-001 converter, F-FILE-* unreadable,
 * F-RUNTIME-002 engine or llama.cpp, F-RUNTIME-003 oracle missing); the runner turns it into a failing check of
 * every claim that needed it, so a planned claim never disappears.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { CheckResult } from '../contracts/results.js';
import type { Verdict } from '../contracts/verdicts.js';
import type { Target } from '../contracts/targets.js';
import type { QuantPolicy } from '../contracts/policy.js';
import type { Baseline } from '../checks/bounds.js';
import type { PerplexityPair } from '../checks/perplexity.js';
import { expectedTensors, type ExpectedTensor } from '../checks/manifest.js';
import type { ConvertResult } from '../converters/adapter.js';
import type { EngineRequest, EngineResult, EngineSequenceResult } from '../engines/types.js';
import { readApr } from '../formats/apr/reader.js';
import { FileByteSource, type ByteSource } from '../formats/byte-source.js';
import { readGguf } from '../formats/gguf/reader.js';
import { readModelFile } from '../formats/read-model.js';
import { readSafetensors } from '../formats/safetensors/reader.js';
import type { ModelFile } from '../formats/types.js';
import type { OracleRecord } from '../oracle/run.js';
import type { Checkpoint } from '../zoo/types.js';
import type { HfTokenizer } from '../zoo/tokenizer.js';
import type { ModelFormat } from '../contracts/targets.js';

/** Held-out tokens the perplexity suite scores (llama.cpp's perplexity uses chunks of 512). */
export const PPL_TOKENS = 512;

/** A prerequisite of a claim could not be had; `verdicts` say why (they become the claim's verdicts). */
export class PrerequisiteFailed extends Error {
  override readonly name = 'PrerequisiteFailed';
  constructor(readonly verdicts: Verdict[]) {
    super(verdicts.map((v) => `${v.code} ${v.message}`).join('; '));
  }
}

/** The real parts a cell runs, as functions, so a test can inject each prerequisite's failure. */
export interface CellProviders {
  convert(): Promise<ConvertResult>;
  oracle(promptIds: number[][], maxNewTokens: number): Promise<OracleRecord[]>;
  engine(req: EngineRequest): Promise<EngineResult>;
  llamaCpp(req: EngineRequest): Promise<EngineResult>;
  /** The round-trip claim on a readable artifact (re-converts with the cell's own converter). */
  roundtrip(artifact: string): Promise<CheckResult>;
  /**
   * The reference converter's prompt-level metrics on the same model and target, by suite and prompt text (for judging
   * another converter relative to it: checks/bounds.ts). Undefined entries: the reference could not measure them.
   */
  referenceMetrics(): Promise<ReferenceMetrics>;
}

/** Metrics of the reference converter's prompt-level checks: suite → prompt → metric → value. */
export type ReferenceMetrics = Partial<Record<string, Record<string, Record<string, number>>>>;

export interface CellInputs {
  target: Target;
  converter: string;
  sourceDir: string;
  checkpoint: Checkpoint;
  tokenizer: HfTokenizer;
  prompts: readonly string[];
  maxNewTokens: number;
  /** What the planned claims need from the engine run: greedy continuations (tokens), layer outputs (logits). */
  engineNeeds: { greedy: boolean; layers: boolean };
  policy: QuantPolicy;
  /** Held-out text for the perplexity suite (documents separated by blank lines). */
  perplexityText: string;
  /** Whether the cell's converter is the reference itself (judged on absolute bounds, never against itself). */
  isReference: boolean;
  /** Whether the absolute bounds are hard for this model: they were calibrated on it (the trained tiny zoo). */
  isCalibrated: boolean;
  providers: CellProviders;
}

const READERS: Record<ModelFormat, (src: ByteSource) => ModelFile> = { gguf: readGguf, apr: readApr, safetensors: readSafetensors };

/**
 * Read an artifact whatever format it is in (the manifest and engine follow the format found). When no format is
 * recognisable, the reader of the format the cell asked for says what is wrong (its magic, its header), which is
 * more useful than "unknown format".
 */
function readArtifact(src: ByteSource, asked: ModelFormat): ModelFile {
  const file = readModelFile(src);
  return file.format === 'unknown' ? READERS[asked](src) : file;
}

function runtimeVerdict(code: 'F-RUNTIME-002' | 'F-RUNTIME-003', message: string, evidence: Record<string, unknown>): Verdict {
  return { code, status: 'fail', message, evidence };
}

/** The artifact as read: the file, its byte source, and the format the converter actually wrote. */
export interface ReadArtifact {
  path: string;
  file: ModelFile;
  src: ByteSource;
  format: ModelFormat;
}

/** The names `CellResult.timingsMs` gives each provider's time. */
const TIMED: Record<keyof CellProviders, string> = {
  convert: 'conversion',
  oracle: 'oracle',
  engine: 'engine',
  llamaCpp: 'llama.cpp',
  roundtrip: 'roundtrip',
  referenceMetrics: 'reference',
};

export class CellContext {
  private readonly memo = new Map<string, Promise<unknown>>();
  private source: ByteSource | undefined;
  /** Milliseconds spent in each provider (summed over its calls), by `TIMED` name. */
  readonly timingsMs: Record<string, number> = {};
  readonly inputs: CellInputs;

  constructor(inputs: CellInputs) {
    const providers = { ...inputs.providers };
    // TIMED's keys are exactly CellProviders' keys (its type says so)
    for (const key of Object.keys(TIMED) as (keyof CellProviders)[]) {
      // each provider is an async function of its own arguments; the wrapper passes them through unchanged
      const call = inputs.providers[key] as (...args: unknown[]) => Promise<unknown>;
      const timed = async (...args: unknown[]): Promise<unknown> => {
        const t0 = performance.now();
        try {
          return await call(...args);
        } finally {
          this.timingsMs[TIMED[key]] = (this.timingsMs[TIMED[key]] ?? 0) + (performance.now() - t0);
        }
      };
      Object.assign(providers, { [key]: timed });
    }
    this.inputs = { ...inputs, providers };
  }

  private once<T>(key: string, build: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined; // the map holds, under each key, what `build` of that key returned
    if (p === undefined) {
      p = build();
      this.memo.set(key, p);
    }
    return p;
  }

  /** The converter's result as it is (ok, failed or skipped). */
  conversion(): Promise<ConvertResult> {
    return this.once('conversion', () => this.inputs.providers.convert());
  }

  /** The artifact's path; F-RUNTIME-001 when the converter failed. */
  async artifact(): Promise<string> {
    const c = await this.conversion();
    if (c.status === 'ok') return c.artifact;
    if (c.status === 'skipped') throw new Error(`conversion skipped (${c.reason}): the runner must not plan claims for a skipped cell`);
    throw new PrerequisiteFailed([
      {
        code: 'F-RUNTIME-001',
        status: 'fail',
        message: `converter '${this.inputs.converter}' ${c.reason}`,
        evidence: { exitCode: c.exitCode ?? null, signal: c.signal ?? null, timedOut: c.timedOut, logTail: c.log.slice(-1000) },
      },
    ]);
  }

  /** The file as the reader found it, fatal issues included (the file suite reports them). */
  readAny(): Promise<ReadArtifact> {
    return this.once('read', async () => {
      const path = await this.artifact();
      this.source = new FileByteSource(path);
      const file = readArtifact(this.source, this.inputs.target.format);
      return { path, file, src: this.source, format: file.format === 'unknown' ? this.inputs.target.format : file.format };
    });
  }

  /** The file, readable: its fatal F-FILE-* issues otherwise. */
  async file(): Promise<ReadArtifact> {
    const r = await this.readAny();
    const fatal = r.file.issues.filter((i) => i.fatal);
    if (fatal.length > 0) {
      throw new PrerequisiteFailed(
        fatal.map((i) => ({
          code: i.code,
          status: 'fail',
          message: i.message,
          evidence: { ...(i.evidence ?? {}), fatal: true },
          ...(i.tensor === undefined ? {} : { tensor: i.tensor }),
        })),
      );
    }
    return r;
  }

  /** The tensors the artifact must hold, named as the format it was written in names them. */
  expected(): Promise<ExpectedTensor[]> {
    return this.once('expected', async () => expectedTensors(this.inputs.checkpoint, (await this.file()).format));
  }

  /** The oracle records of every prompt (built and cached by the oracle runner). */
  oracleRecords(): Promise<OracleRecord[]> {
    return this.once('oracle', () =>
      this.inputs.providers.oracle(
        this.inputs.prompts.map((p) => this.inputs.tokenizer.encode(p)),
        this.inputs.maxNewTokens,
      ),
    );
  }

  /** One prompt's oracle record; F-RUNTIME-003 when there is none (the harness could not evaluate the claim). */
  async oracle(promptIndex: number): Promise<OracleRecord> {
    const records = await this.oracleRecords();
    const r = records[promptIndex];
    if (r === undefined) {
      const prompt = this.inputs.prompts[promptIndex] ?? '';
      throw new PrerequisiteFailed([
        runtimeVerdict('F-RUNTIME-003', `no oracle record for prompt ${JSON.stringify(prompt)}`, { prompt, records: records.length }),
      ]);
    }
    return r;
  }

  /** The engine request every engine gets: teacher-forced on the oracle's ids. */
  private async engineRequest(forLlamaCpp: boolean): Promise<EngineRequest> {
    const { path, format } = await this.file();
    const records = await this.oracleRecords();
    const { greedy, layers } = this.inputs.engineNeeds;
    return {
      artifact: path,
      format,
      // safetensors carries no hyperparameters: the engine reads the source checkpoint's.
      configPath: join(this.inputs.sourceDir, 'config.json'),
      sequences: records.map((o) => o.ids),
      maxNewTokens: !forLlamaCpp && greedy ? this.inputs.maxNewTokens : 0,
      promptLengths: records.map((o) => o.promptIds.length),
      captureLayers: !forLlamaCpp && layers,
    };
  }

  private sequence(run: Promise<EngineResult>, promptIndex: number): Promise<EngineSequenceResult> {
    return run.then((r) => {
      if (r.status === 'failed') {
        throw new PrerequisiteFailed([
          runtimeVerdict('F-RUNTIME-002', `engine '${r.engine}' could not run the artifact: ${r.message}`, {
            engine: r.engine,
            error: r.message,
          }),
        ]);
      }
      const s = r.sequences[promptIndex];
      if (s === undefined) {
        throw new PrerequisiteFailed([
          runtimeVerdict('F-RUNTIME-002', `engine '${r.engine}' returned no result for prompt ${promptIndex}`, {
            engine: r.engine,
            sequences: r.sequences.length,
          }),
        ]);
      }
      return s;
    });
  }

  /** The bundled engine's run of one prompt; F-RUNTIME-002 when it could not load or run the artifact. */
  engine(promptIndex: number): Promise<EngineSequenceResult> {
    const run = this.once('engine', async () => this.inputs.providers.engine(await this.engineRequest(false)));
    return this.sequence(run, promptIndex);
  }

  /** llama.cpp's run of one prompt (teacher-forced, in a child process); F-RUNTIME-002 when it failed. */
  llamaCpp(promptIndex: number): Promise<EngineSequenceResult> {
    const run = this.once('llama.cpp', async () => this.inputs.providers.llamaCpp(await this.engineRequest(true)));
    return this.sequence(run, promptIndex);
  }

  /**
   * The perplexity run: the held-out text's first documents (each at most the model's context, ~PPL_TOKENS in all),
   * teacher-forced through the oracle and the bundled engine.
   */
  perplexityRun(): Promise<{ pairs: PerplexityPair[]; vocab: number }> {
    return this.once('perplexity', async () => {
      const { path, format } = await this.file();
      const cfg = this.inputs.checkpoint.config as unknown as Record<string, unknown>; // read-only look-up of optional fields
      const ctxLen = [cfg['max_position_embeddings'], cfg['n_positions']].find((v): v is number => typeof v === 'number') ?? PPL_TOKENS;
      const sequences: number[][] = [];
      let total = 0;
      for (const doc of this.inputs.perplexityText.split(/\n\s*\n/)) {
        if (total >= PPL_TOKENS) break;
        const ids = this.inputs.tokenizer.encode(doc.trim()).slice(0, Math.min(ctxLen, PPL_TOKENS));
        if (ids.length < 2) continue;
        sequences.push(ids);
        total += ids.length;
      }
      if (sequences.length === 0)
        throw new PrerequisiteFailed([runtimeVerdict('F-RUNTIME-003', 'the held-out text gives no sequence of two tokens or more', {})]);
      const oracle = await this.inputs.providers.oracle(sequences, 0);
      const run = await this.inputs.providers.engine({
        artifact: path,
        format,
        configPath: join(this.inputs.sourceDir, 'config.json'),
        sequences,
        maxNewTokens: 0,
        promptLengths: sequences.map((q) => q.length),
        captureLayers: false,
      });
      if (run.status === 'failed') {
        throw new PrerequisiteFailed([
          runtimeVerdict('F-RUNTIME-002', `engine '${run.engine}' could not run the artifact: ${run.message}`, {
            engine: run.engine,
            error: run.message,
          }),
        ]);
      }
      const pairs = sequences.map((ids, i) => {
        const o = oracle[i];
        const c = run.sequences[i];
        if (o === undefined)
          throw new PrerequisiteFailed([runtimeVerdict('F-RUNTIME-003', `no oracle record for held-out sequence ${i}`, { sequence: i })]);
        if (c === undefined)
          throw new PrerequisiteFailed([
            runtimeVerdict('F-RUNTIME-002', `engine returned no result for held-out sequence ${i}`, { sequence: i }),
          ]);
        return { ids, oracle: o.logits, candidate: c.logits };
      });
      return { pairs, vocab: oracle[0]?.vocabSize ?? 0 };
    });
  }

  /**
   * Judge a prompt-level claim: first against the absolute bounds; a converter other than the reference that exceeds them
   * is judged again against the reference's own metrics on the same model and target (computed once, on demand).
   */
  async judged(suite: string, prompt: string, check: (baseline: Baseline) => CheckResult): Promise<CheckResult> {
    const { isReference, isCalibrated } = this.inputs;
    const first = check({ absoluteIsHard: isCalibrated || !isReference });
    if (first.status === 'pass' || isReference) return first;
    const reference = (await this.once('reference', () => this.inputs.providers.referenceMetrics()))[suite]?.[prompt] ?? {};
    return check({ reference, absoluteIsHard: isCalibrated });
  }

  /** The round trip of the artifact (it must be readable). */
  async roundtrip(): Promise<CheckResult> {
    const { path } = await this.file();
    return this.inputs.providers.roundtrip(path);
  }

  /** Release the artifact's file handle. */
  close(): void {
    this.source?.close();
    this.source = undefined;
  }
}
