/**
 * The oracle drift baseline: `oracles/manifest.json`, committed.
 *
 * For every pinned model it records what the oracle was computed from (sha256 of model.safetensors, config.json
 * and tokenizer.json, the onnxruntime version, ORACLE_VERSION) and, per default prompt, what it said: the prompt's
 * token ids, the greedy continuation (ids and decoded text), the sha256 of the f32 logits, and a compact logits
 * fingerprint. A later oracle run on the same model is compared against it (`compareToManifest`): greedy tokens
 * must be identical and the fingerprint within NMSE 1e-10, so an onnxruntime upgrade or a graph change that moves
 * the numbers is caught even though the full logits are never committed.
 *
 * **Fingerprint.** K = 8 token ids spread evenly over the vocabulary, `floor((2k + 1)·V / 2K)` for k = 0..K−1
 * (recorded as `fingerprintIds`, so a comparison never re-derives them). For every position t of
 * prompt + continuation one row: the logits at those ids, then the row's max and mean over all V logits —
 * K + 2 numbers, rounded to 8 significant digits (relative error ≤ 5e-8, far below the NMSE bound). NMSE is taken
 * per prompt over all the numbers of its rows: Σ(got − pinned)² / Σ pinned².
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, sha256File } from '../cache.js';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS } from '../config.js';
import { errorMessage, HarnessError } from '../errors.js';
import { buildModel } from '../zoo/build.js';
import { findModelSpec, listModelSpecs, REPO_ROOT, type ModelSpec } from '../zoo/specs.js';
import { HfTokenizer } from '../zoo/tokenizer.js';
import { ORACLE_VERSION } from './records.js';
import { onnxRuntimeVersion, runOracleFromDir, type OracleRecord } from './run.js';

export const ORACLE_MANIFEST_PATH = join(REPO_ROOT, 'oracles', 'manifest.json');
export const MANIFEST_VERSION = 1;
/** How many fixed token ids the fingerprint samples per position. */
export const FINGERPRINT_IDS = 8;
/** Significant digits the fingerprint keeps (relative rounding error ≤ 5e-8). */
const FINGERPRINT_DIGITS = 8;
/** Fingerprint NMSE above which a re-run of the oracle has drifted from the baseline. */
export const DRIFT_NMSE_BOUND = 1e-10;
export const REPIN_COMMAND = 'node bin/tmgt.js oracles pin';

const FINGERPRINT_DOC =
  `per position of prompt+continuation: logits at fingerprintIds (${FINGERPRINT_IDS} ids floor((2k+1)·V/${2 * FINGERPRINT_IDS})), ` +
  `then the row's max and mean over all V logits; ${FINGERPRINT_DIGITS} significant digits; drift = NMSE per prompt > ${DRIFT_NMSE_BOUND}`;

/** What a pinned oracle was computed from; any difference makes the pin stale (re-pin, not drift). */
export interface ModelIdentity {
  modelSha256: string;
  configSha256: string;
  tokenizerSha256: string;
}

export interface ManifestPrompt {
  prompt: string;
  promptIds: number[];
  greedyIds: number[];
  /** HfTokenizer decoding of greedyIds (special tokens kept). */
  greedyText: string;
  /** sha256 of the f32 logits (ids.length × V, little-endian): bit-identity, informational only. */
  logitsSha256: string;
  /** One row per position of promptIds + greedyIds: logits at fingerprintIds, then max, then mean. */
  fingerprint: number[][];
}

export interface ManifestModel extends ModelIdentity {
  arch: string;
  onnxruntime: string;
  oracleVersion: number;
  maxNewTokens: number;
  vocabSize: number;
  fingerprintIds: number[];
  prompts: ManifestPrompt[];
}

export interface OracleManifest {
  manifestVersion: typeof MANIFEST_VERSION;
  /** How the fingerprint rows are made (documentation that travels with the data). */
  fingerprint: string;
  /** Keyed by zoo model name. */
  models: Record<string, ManifestModel>;
}

export interface PromptDrift {
  prompt: string;
  greedyExact: boolean;
  /** Index into greedyIds of the first differing token, or null. */
  firstGreedyMismatch: number | null;
  fingerprintNmse: number;
  logitsBitIdentical: boolean;
}

export interface DriftReport {
  model: string;
  /** ok: matches the baseline; drift: same inputs, different oracle; stale: inputs changed (re-pin); unpinned: no baseline. */
  status: 'ok' | 'drift' | 'stale' | 'unpinned';
  /** One line per reason the status is not ok. */
  problems: string[];
  /** Differences that are not failures (e.g. another onnxruntime version within tolerance). */
  notes: string[];
  prompts: PromptDrift[];
  maxFingerprintNmse: number;
}

/** The K fingerprint ids of a vocabulary of size V: evenly spread, distinct, deterministic in V alone. */
export function fingerprintIds(vocabSize: number): number[] {
  const k = Math.min(FINGERPRINT_IDS, vocabSize);
  return Array.from({ length: k }, (_, i) => Math.floor(((2 * i + 1) * vocabSize) / (2 * k)));
}

const round = (x: number): number => Number(x.toPrecision(FINGERPRINT_DIGITS));

/** Fingerprint rows of a [rows × V] logits matrix. */
export function logitsFingerprint(logits: Float32Array, vocabSize: number, ids: readonly number[]): number[][] {
  const rows = logits.length / vocabSize;
  if (!Number.isInteger(rows))
    throw new HarnessError('E-ORACLE', `logits length ${logits.length} is not a multiple of the vocabulary ${vocabSize}`);
  const out: number[][] = [];
  for (let t = 0; t < rows; t++) {
    const row = logits.subarray(t * vocabSize, (t + 1) * vocabSize);
    let max = -Infinity;
    let sum = 0;
    for (const x of row) {
      if (x > max) max = x;
      sum += x;
    }
    out.push([...ids.map((id) => round(row[id] as number)), round(max), round(sum / vocabSize)]);
  }
  return out;
}

/** Σ(got − want)² / Σ want² over all numbers; rows of different counts or widths are infinitely far apart. */
export function fingerprintNmse(got: readonly (readonly number[])[], want: readonly (readonly number[])[]): number {
  if (got.length !== want.length) return Infinity;
  let err = 0;
  let energy = 0;
  for (const [t, w] of want.entries()) {
    const g = got[t] as readonly number[]; // got.length === want.length: checked above
    if (g.length !== w.length) return Infinity;
    for (const [j, wv] of w.entries()) {
      err += ((g[j] as number) - wv) ** 2;
      energy += wv ** 2;
    }
  }
  if (energy === 0) return err === 0 ? 0 : Infinity;
  return err / energy;
}

export function modelIdentity(dir: string): ModelIdentity {
  return {
    modelSha256: sha256File(join(dir, 'model.safetensors')),
    configSha256: sha256File(join(dir, 'config.json')),
    tokenizerSha256: sha256File(join(dir, 'tokenizer.json')),
  };
}

const short = (h: string): string => h.slice(0, 12);

/** Why a pinned entry no longer describes this model and prompt set (empty when it still does). */
export function staleness(
  model: string,
  entry: ManifestModel,
  identity: ModelIdentity,
  prompts: readonly string[] = DEFAULT_PROMPTS,
): string[] {
  const repin = `re-pin with \`${REPIN_COMMAND} ${model}\``;
  const out: string[] = [];
  const fields = [
    ['model sha256 (model.safetensors)', 'modelSha256'],
    ['config.json sha256', 'configSha256'],
    ['tokenizer.json sha256', 'tokenizerSha256'],
  ] as const;
  for (const [label, key] of fields) {
    if (entry[key] !== identity[key])
      out.push(`${model}: ${label} is ${short(identity[key])}…, the manifest pinned ${short(entry[key])}…: ${repin}`);
  }
  const pinned = entry.prompts.map((p) => p.prompt);
  if (JSON.stringify(pinned) !== JSON.stringify(prompts)) out.push(`${model}: the default prompts changed since the pin: ${repin}`);
  if (entry.oracleVersion !== ORACLE_VERSION)
    out.push(`${model}: pinned with ORACLE_VERSION ${entry.oracleVersion}, the graphs are now ${ORACLE_VERSION}: ${repin}`);
  return out;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The manifest entry of one model from its oracle records (one per prompt, in order). */
export function manifestEntry(args: {
  arch: string;
  identity: ModelIdentity;
  prompts: readonly string[];
  records: readonly OracleRecord[];
  maxNewTokens: number;
  decode: (ids: number[]) => string;
}): ManifestModel {
  const first = args.records[0];
  if (first === undefined || args.records.length !== args.prompts.length) {
    throw new HarnessError('E-ORACLE', `${args.records.length} oracle records for ${args.prompts.length} prompts`);
  }
  const V = first.vocabSize;
  const ids = fingerprintIds(V);
  return {
    arch: args.arch,
    ...args.identity,
    onnxruntime: onnxRuntimeVersion(),
    oracleVersion: ORACLE_VERSION,
    maxNewTokens: args.maxNewTokens,
    vocabSize: V,
    fingerprintIds: ids,
    prompts: args.records.map((r, i) => ({
      prompt: args.prompts[i] as string, // records.length === prompts.length: checked above
      promptIds: r.promptIds,
      greedyIds: r.greedyIds,
      greedyText: args.decode(r.greedyIds),
      logitsSha256: sha256(bytesOf(r.logits)),
      fingerprint: logitsFingerprint(r.logits, V, ids),
    })),
  };
}

/** Compare fresh oracle records of `model` (one per pinned prompt, in order) with the manifest. */
export function compareToManifest(
  model: string,
  records: readonly OracleRecord[],
  opts: { manifest?: OracleManifest; identity?: ModelIdentity; nmseBound?: number } = {},
): DriftReport {
  const manifest = opts.manifest ?? readOracleManifest();
  const bound = opts.nmseBound ?? DRIFT_NMSE_BOUND;
  const report: DriftReport = { model, status: 'ok', problems: [], notes: [], prompts: [], maxFingerprintNmse: 0 };
  const entry = manifest?.models[model];
  if (entry === undefined) {
    report.status = 'unpinned';
    report.problems.push(`${model} has no oracle baseline in oracles/manifest.json: pin it with \`${REPIN_COMMAND} ${model}\``);
    return report;
  }
  if (opts.identity !== undefined) {
    const stale = staleness(
      model,
      entry,
      opts.identity,
      entry.prompts.map((p) => p.prompt),
    );
    if (stale.length > 0) {
      report.status = 'stale';
      report.problems.push(...stale);
      return report;
    }
  }
  if (entry.onnxruntime !== onnxRuntimeVersion())
    report.notes.push(`pinned with onnxruntime ${entry.onnxruntime}, running ${onnxRuntimeVersion()}`);
  if (records.length !== entry.prompts.length) {
    report.status = 'drift';
    report.problems.push(`${model}: ${records.length} oracle records for ${entry.prompts.length} pinned prompts`);
    return report;
  }
  for (const [i, pinned] of entry.prompts.entries()) {
    const r = records[i] as OracleRecord; // records.length === entry.prompts.length: checked above
    const label = `${model} prompt ${JSON.stringify(pinned.prompt)}`;
    if (JSON.stringify(r.promptIds) !== JSON.stringify(pinned.promptIds)) {
      report.problems.push(`${label}: prompt ids [${r.promptIds.join(',')}] differ from the pinned [${pinned.promptIds.join(',')}]`);
    }
    const n = Math.max(r.greedyIds.length, pinned.greedyIds.length);
    let firstGreedyMismatch: number | null = null;
    for (let k = 0; k < n && firstGreedyMismatch === null; k++) if (r.greedyIds[k] !== pinned.greedyIds[k]) firstGreedyMismatch = k;
    if (firstGreedyMismatch !== null) {
      const k = firstGreedyMismatch;
      report.problems.push(
        `${label}: greedy token ${k} is ${String(r.greedyIds[k])}, pinned ${String(pinned.greedyIds[k])} (pinned text ${JSON.stringify(pinned.greedyText)})`,
      );
    }
    const nmse =
      r.vocabSize === entry.vocabSize
        ? fingerprintNmse(logitsFingerprint(r.logits, r.vocabSize, entry.fingerprintIds), pinned.fingerprint)
        : Infinity;
    if (!(nmse <= bound)) report.problems.push(`${label}: logits fingerprint NMSE ${nmse.toExponential(2)} > ${bound.toExponential(0)}`);
    report.maxFingerprintNmse = Math.max(report.maxFingerprintNmse, nmse);
    report.prompts.push({
      prompt: pinned.prompt,
      greedyExact: firstGreedyMismatch === null,
      firstGreedyMismatch,
      fingerprintNmse: nmse,
      logitsBitIdentical: sha256(bytesOf(r.logits)) === pinned.logitsSha256,
    });
  }
  if (report.problems.length > 0) report.status = 'drift';
  return report;
}

/** Console lines of a drift report. */
export function driftReportLines(r: DriftReport): string[] {
  const head =
    `${r.model}: ${r.status}` +
    (r.prompts.length > 0
      ? `, max fingerprint NMSE ${r.maxFingerprintNmse.toExponential(2)}, logits bit-identical ${r.prompts.filter((p) => p.logitsBitIdentical).length}/${r.prompts.length}`
      : '');
  return [head, ...r.notes.map((n) => `  note: ${n}`), ...r.problems.map((p) => `  ${p}`)];
}

// ---- file ----------------------------------------------------------------------------------------

/** The committed manifest, or undefined when there is none yet. */
export function readOracleManifest(path = ORACLE_MANIFEST_PATH): OracleManifest | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new HarnessError('E-ORACLE-MANIFEST', `cannot read ${path}: ${errorMessage(e)}`, { cause: e });
  }
  const m = raw as Partial<OracleManifest> | null; // checked on the next line
  if (m === null || typeof m !== 'object' || m.manifestVersion !== MANIFEST_VERSION || typeof m.models !== 'object' || m.models === null) {
    throw new HarnessError('E-ORACLE-MANIFEST', `${path}: not an oracle manifest of version ${MANIFEST_VERSION}: ${REPIN_COMMAND}`);
  }
  return m as OracleManifest; // its version and models checked above; the rest is the shape this module writes
}

/** JSON with two-space structure but every array of numbers on one line (one fingerprint row per line). */
export function formatOracleManifest(m: OracleManifest): string {
  const text = JSON.stringify(m, null, 1);
  return (
    text.replace(/\[\n\s*(-?[\d.eE+-]+(?:,\n\s*-?[\d.eE+-]+)*)\n\s*\]/g, (_, body: string) => `[${body.replace(/,\n\s*/g, ',')}]`) + '\n'
  );
}

/** Write the manifest atomically (temp file + rename); returns the bytes written. */
export function writeOracleManifest(m: OracleManifest, path = ORACLE_MANIFEST_PATH): number {
  const text = formatOracleManifest(m);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  return Buffer.byteLength(text);
}

// ---- pinning -------------------------------------------------------------------------------------

/** Tiny zoo models: shape-faithful (`nightly`) models are left to the nightly matrix. */
export function isTinyModel(spec: ModelSpec): boolean {
  return !((spec.kind === 'seeded' || spec.kind === 'derived') && spec.nightly === true);
}

/** The models `tmgt oracles pin` pins by default: every tiny model the zoo builds itself. */
export function defaultPinnedModels(): string[] {
  return listModelSpecs()
    .filter((s) => s.kind !== 'checkpoint' && isTinyModel(s))
    .map((s) => s.name);
}

/**
 * Build each model, run its oracle fresh (not from the cache) on the default prompts and return `base` with those
 * models' entries replaced (models sorted by name).
 */
export async function pinOracles(
  models: string[],
  opts: { base?: OracleManifest; prompts?: readonly string[]; maxNewTokens?: number; log?: (line: string) => void } = {},
): Promise<OracleManifest> {
  const prompts = opts.prompts ?? DEFAULT_PROMPTS;
  const maxNewTokens = opts.maxNewTokens ?? DEFAULT_MATRIX.maxNewTokens;
  const entries: Record<string, ManifestModel> = { ...(opts.base?.models ?? {}) };
  for (const name of models) {
    const spec = findModelSpec(name);
    const dir = await buildModel(spec);
    const tokenizer = HfTokenizer.fromDir(dir);
    const records = await runOracleFromDir(
      dir,
      prompts.map((p) => tokenizer.encode(p)),
      { maxNewTokens },
    );
    const entry = manifestEntry({
      arch: spec.arch,
      identity: modelIdentity(dir),
      prompts,
      records,
      maxNewTokens,
      decode: (ids) => tokenizer.decode(ids),
    });
    entries[name] = entry;
    opts.log?.(
      `pinned ${name}: model sha256 ${short(entry.modelSha256)}…, onnxruntime ${entry.onnxruntime}, ${entry.prompts.length} prompts`,
    );
    for (const p of entry.prompts) opts.log?.(`  ${JSON.stringify(p.prompt)} → ${JSON.stringify(p.greedyText)}`);
  }
  const sorted: Record<string, ManifestModel> = {};
  for (const k of Object.keys(entries).sort()) sorted[k] = entries[k] as ManifestModel; // one of entries' own keys
  return { manifestVersion: MANIFEST_VERSION, fingerprint: FINGERPRINT_DOC, models: sorted };
}
