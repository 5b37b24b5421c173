/**
 * What a run produces, as data every layer above the checks may read (report renderers, the CLI, suites/).
 * Pure types: this module imports nothing but other contracts.
 */
import type { SuiteName, Verdict } from './verdicts.js';

/** pass: the claim holds. warn: it holds, with a finding worth reading (never counted as a failure). fail: it does not hold. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

/** Per-prompt detail a report can show beside a prompt-level claim (logits, tokens, cross-runtime). */
export interface PromptDetail {
  /** KL(oracle ‖ candidate) at every scored position. */
  klPerPosition?: number[];
  /** The oracle's greedy continuation and the candidate's, decoded. */
  oracleText?: string;
  candidateText?: string;
  /** The first layer whose output fails while its input passes (e.g. `blk.1`), when layers were captured. */
  firstDivergingLayer?: string;
}

/** One claim about a cell: one suite, and for prompt-level suites one prompt. */
export interface CheckResult {
  suite: SuiteName;
  prompt?: string;
  status: CheckStatus;
  verdicts: Verdict[];
  /** The measured values behind the claim, pass or fail (for calibration and reports). */
  metrics?: Record<string, number>;
  detail?: PromptDetail;
}

/** One row of a cell's per-tensor table: every tensor of the artifact, failing or not. */
export interface TensorRow {
  name: string;
  /** llama.cpp's role name (`blk.0.attn_q.weight`), the same whatever the artifact calls the tensor. */
  role?: string;
  shape: number[];
  dtype: string;
  bytes: number;
  sqnrDb?: number;
  sqnrBoundDb?: number;
  zeroFraction?: number;
  /** Codes of the verdicts that name this tensor. */
  codes: string[];
}

interface CellBase {
  converter: string;
  model: string;
  target: string;
  engine: string;
  durationMs: number;
  /**
   * Where the cell's time went, in ms: each real part it ran (conversion, oracle, engine, llama.cpp, roundtrip,
   * reference — the reference converter's metrics for relative bounds) and `other`: loading the source, reading the
   * artifact, the judging itself.
   */
  timingsMs?: Record<string, number>;
}

/** A cell either ran (and holds exactly its planned claims) or could not run here at all (not a verdict). */
export type CellResult =
  | (CellBase & { status: 'done'; artifact?: string; checks: CheckResult[]; tensors?: TensorRow[] })
  /** The converter cannot run here (not installed, target not offered): no claims, not a failure. */
  | (CellBase & { status: 'skipped'; reason: string; checks: [] });

export interface ReportSummary {
  checks: number;
  passed: number;
  warned: number;
  failed: number;
}

/** The shape of `reports/parity.json`. */
export interface ParityReport {
  schemaVersion: 2;
  tool: { name: 'tiny-model-ground-truth'; version: string };
  /** True when the run stopped before every planned cell finished (interrupted). */
  incomplete?: boolean;
  summary: ReportSummary;
  /** The same counts per converter. */
  converters: Record<string, ReportSummary>;
  cells: CellResult[];
  /** The mutant kill matrix, when the run was `tmgt mutants`. */
  mutants?: { mutant: string; model: string; target: string; expected: string; got: string[]; killed: boolean }[];
}

/** One rule for a check's status from its verdicts: fail if any fails, warn if any warns, pass otherwise. */
export function statusOf(verdicts: readonly Pick<Verdict, 'status'>[]): CheckStatus {
  if (verdicts.some((v) => v.status === 'fail')) return 'fail';
  return verdicts.length > 0 ? 'warn' : 'pass';
}
