/**
 * The verdict catalogue and the suite names: the vocabulary every layer shares. Imports nothing.
 */

/**
 * The verdict catalogue. Codes are stable: never renumbered, never reused. A code is added here when the
 * harness can emit it, and a test proves every code here is produced (test/codes-coverage.test.ts).
 */
export const CODES = {
  'F-FILE-001': { level: 'L0 file', title: 'unreadable: bad magic, version, header' },
  'F-FILE-002': { level: 'L0 file', title: 'tensor data out of bounds / file truncated' },
  'F-FILE-003': { level: 'L0 file', title: 'offsets misaligned, overlapping or out of order' },
  'F-FILE-004': { level: 'L0 file', title: 'checksum mismatch (APR header or footer CRC32)' },
  'F-META-001': {
    level: 'L1 metadata',
    title: 'hyperparameter differs from the source config (hidden, layers, heads, kv heads, ffn, vocab, context)',
  },
  'F-META-002': { level: 'L1 metadata', title: 'norm epsilon differs' },
  'F-META-003': { level: 'L1 metadata', title: 'RoPE type or base differs' },
  'F-META-004': { level: 'L1 metadata', title: 'tokenizer differs (token ids of probe strings, vocab, BOS/EOS)' },
  'F-LAYOUT-CONTRACT-001': { level: 'L2 layout', title: 'element count / shape mismatch' },
  'F-LAYOUT-CONTRACT-002': { level: 'L2 layout', title: '2-D weight transposed, or lm_head/embedding not [vocab, hidden]' },
  'F-LAYOUT-CONTRACT-003': { level: 'L2 layout', title: '1-D tensor (norm, bias) altered or quantized' },
  'F-LAYOUT-CONTRACT-004': { level: 'L2 layout', title: 'byte size differs from what dtype × shape requires' },
  'F-LAYOUT-CONTRACT-006': {
    level: 'L2 layout',
    title: 'name bijection broken: a source tensor has no counterpart, or an unexpected tensor',
  },
  'F-LAYOUT-CONTRACT-007': {
    level: 'L2 layout',
    title: "dtype breaks the converter's declared quantization policy (e.g. lm_head quantized, or nothing quantized at all)",
  },
  'F-DATA-QUALITY-001': { level: 'L3 data quality', title: "density: zero fraction far above the source's" },
  'F-DATA-QUALITY-002': { level: 'L3 data quality', title: 'NaN or Inf' },
  'F-DATA-QUALITY-003': { level: 'L3 data quality', title: 'constant tensor or L2 ≈ 0' },
  'F-DATA-QUALITY-004': { level: 'L3 data quality', title: 'spot rows (10/50/90% of rows) dead: offset shift' },
  'F-DATA-QUALITY-005': { level: 'L3 data quality', title: 'too many dead rows' },
  'F-FIDELITY-001': { level: 'L4 fidelity', title: "dequantized tensor vs source: SQNR below the target's bound" },
  'F-FIDELITY-002': {
    level: 'L4 fidelity',
    title: 'a transform explains the tensor (transpose, RoPE permute, q/k/v block order, row shift): names it',
  },
  'F-FIDELITY-003': { level: 'L4 fidelity', title: 'f16/bf16 not round-to-nearest-even of the source (bit check)' },
  'F-LOGITS-001': { level: 'L5 logits', title: 'NaN/Inf in logits' },
  'F-LOGITS-002': { level: 'L5 logits', title: 'NMSE above bound' },
  'F-LOGITS-003': { level: 'L5 logits', title: 'KL divergence (mean or p99) above bound' },
  'F-LOGITS-004': { level: 'L5 logits', title: 'same-top-1 rate below bound (near-ties excluded)' },
  'F-LOGITS-005': { level: 'L5 logits', title: "perplexity on held-out text above the oracle's by more than the bound (PPL ratio)" },
  'F-TOKENS-001': { level: 'L6 tokens', title: 'canary: greedy continuation differs where it must be exact' },
  'F-TOKENS-002': { level: 'L6 tokens', title: "greedy mismatches above the target's bound" },
  'F-TOKENS-003': { level: 'L6 tokens', title: 'drift ordering: a higher-precision target drifts more than a lower one + 1' },
  'F-ROUNDTRIP-001': { level: 'cross', title: 'A → B → A is not identical' },
  'F-CROSS-RUNTIME-001': { level: 'cross', title: 'bundled engine and llama.cpp disagree on the same artifact' },
  'F-RUNTIME-001': { level: 'runtime', title: 'converter failed: exit ≠ 0, signal, timeout, no output' },
  'F-RUNTIME-002': { level: 'runtime', title: 'engine could not load or run the artifact' },
  'F-RUNTIME-003': {
    level: 'runtime',
    title: 'the harness could not evaluate the claim (oracle missing, internal error): the run exits 2',
  },
} as const satisfies Record<string, { level: string; title: string }>;

export type VerdictCode = keyof typeof CODES;

/** File-level verdict codes a reader can raise. */
export type FileCode = Extract<VerdictCode, `F-FILE-${string}`>;

/** One finding. Evidence is typed data (expected vs got, metric values, bounds), never only a string. */
export interface Verdict {
  code: VerdictCode;
  status: 'fail' | 'warn';
  tensor?: string;
  message: string;
  evidence: Record<string, unknown>;
}

/** The parity claims, in run order (DESIGN.md §4 levels L0–L6 plus the cross checks). */
export const SUITES = [
  'file',
  'metadata',
  'layout',
  'data-quality',
  'fidelity',
  'logits',
  'perplexity',
  'tokens',
  'roundtrip',
  'cross-runtime',
] as const;
export type SuiteName = (typeof SUITES)[number];

/**
 * What a verdict's evidence holds, by code, named the same way everywhere:
 * - `metric`: a measured value against its bound — `metric` (its name), `got`, `bound`, `minPassingBound` (the smallest
 *   bound that would have passed);
 * - `mismatch`: what the source implies against what the file holds — `expected`, `got`;
 * - `detail`: what the reader or runtime reported (file offsets, exit codes, errors), free-form.
 * Codes are never renumbered, so neither is this table; a new code is a compile error until it has a kind.
 */
export type EvidenceKind = 'metric' | 'mismatch' | 'detail';
export const EVIDENCE_KIND = {
  'F-FILE-001': 'detail',
  'F-FILE-002': 'detail',
  'F-FILE-003': 'detail',
  'F-FILE-004': 'detail',
  'F-META-001': 'mismatch',
  'F-META-002': 'mismatch',
  'F-META-003': 'mismatch',
  'F-META-004': 'mismatch',
  'F-LAYOUT-CONTRACT-001': 'mismatch',
  'F-LAYOUT-CONTRACT-002': 'mismatch',
  'F-LAYOUT-CONTRACT-003': 'mismatch',
  'F-LAYOUT-CONTRACT-004': 'mismatch',
  'F-LAYOUT-CONTRACT-006': 'mismatch',
  'F-LAYOUT-CONTRACT-007': 'mismatch',
  'F-DATA-QUALITY-001': 'metric',
  'F-DATA-QUALITY-002': 'metric',
  'F-DATA-QUALITY-003': 'metric',
  'F-DATA-QUALITY-004': 'metric',
  'F-DATA-QUALITY-005': 'metric',
  'F-FIDELITY-001': 'metric',
  'F-FIDELITY-002': 'mismatch',
  'F-FIDELITY-003': 'metric',
  'F-LOGITS-001': 'metric',
  'F-LOGITS-002': 'metric',
  'F-LOGITS-003': 'metric',
  'F-LOGITS-004': 'metric',
  'F-LOGITS-005': 'metric',
  'F-TOKENS-001': 'metric',
  'F-TOKENS-002': 'metric',
  'F-TOKENS-003': 'metric',
  'F-ROUNDTRIP-001': 'detail',
  'F-CROSS-RUNTIME-001': 'metric',
  'F-RUNTIME-001': 'detail',
  'F-RUNTIME-002': 'detail',
  'F-RUNTIME-003': 'detail',
} as const satisfies Record<VerdictCode, EvidenceKind>;

const EVIDENCE_FIELDS: Record<EvidenceKind, readonly string[]> = {
  metric: ['metric', 'got', 'bound', 'minPassingBound'],
  mismatch: ['expected', 'got'],
  detail: [],
};

/** The fields a verdict's evidence lacks for its code's kind (empty when it conforms). */
export function evidenceProblems(v: Pick<Verdict, 'code' | 'evidence'>): string[] {
  const kind = EVIDENCE_KIND[v.code];
  return EVIDENCE_FIELDS[kind].filter((f) => !Object.hasOwn(v.evidence, f)).map((f) => `${v.code} (${kind}) evidence has no '${f}'`);
}
