/**
 * `tmgt diff A B [--json]`: compare two model files tensor by tensor, across formats. Tensors are
 * matched by name, mapping HF names to GGUF names (llama, qwen2, gpt2) when the two sides name them
 * differently; a GGUF side's layout (LLaMA Q/K permutation, GPT-2 Conv1D transpose) is undone before
 * values are compared against an HF-layout side. Per tensor: SQNR, cosine, max |a−b|, shape and dtype
 * differences; plus the names found on one side only. A report, not a verdict: exit 0 whenever both
 * files were read, 2 when either cannot be read.
 */
import { parseArgs } from 'node:util';
import { errorMessage, HarnessError, UsageError } from '../errors.js';
import {
  archFromHfNames,
  ggufToHf,
  hfToGguf,
  isGgufStyleName,
  isMappedArch,
  undoGgufLayout,
  type HeadCounts,
  type LayoutTransform,
  type MappedArch,
} from '../formats/name-map.js';
import { pairMetrics, type PairMetrics } from '../formats/stats.js';
import type { FileIssue, TensorEntry } from '../formats/types.js';
import { decodeTensor, fmt, issueLine, openModelFile, readCheckpointConfig, reportJson, type OpenedModel } from './inspect.js';
import { terminalSafe } from '../report/parity.js';
import { textTable } from '../report/table.js';

export const DIFF_EXIT = { ok: 0, unreadable: 2 } as const;

/** One side of a matched pair, as stored in its file. */
export interface DiffSide {
  name: string;
  shape: number[];
  dtype: string;
  /** The layout transform undone on this side before comparing ('none' when nothing was undone). */
  undone: LayoutTransform;
}

/** One matched tensor. */
export interface DiffTensor {
  /** The GGUF-style name both sides map to. */
  key: string;
  a: DiffSide;
  b: DiffSide;
  /** Shapes equal after undoing layouts (metrics are computed only then). */
  isShapeEqual: boolean;
  isDtypeEqual: boolean;
  /** B against the reference A; null when the shapes differ or a side could not be decoded. */
  metrics: PairMetrics | null;
  error?: string;
}

export interface DiffFileInfo {
  file: string;
  format: string;
  issues: FileIssue[];
  tensorCount: number;
}

/** The `tmgt diff --json` document. */
export interface DiffReport {
  a: DiffFileInfo;
  b: DiffFileInfo;
  /** Architecture used for name mapping, or null when names were matched verbatim. */
  arch: MappedArch | null;
  tensors: DiffTensor[];
  /** Names in A with no counterpart in B, and the reverse. */
  onlyInA: string[];
  onlyInB: string[];
  summary: {
    matched: number;
    identical: number;
    shapeMismatches: number;
    dtypeMismatches: number;
    /** Lowest SQNR over the tensors with metrics (null when none). */
    minSqnrDb: number | null;
    minCosine: number | null;
  };
}

type Layout = 'gguf' | 'hf';

interface SideContext {
  model: OpenedModel;
  layout: Layout;
  arch: MappedArch | undefined;
  heads: HeadCounts | undefined;
}

function asMappedArch(v: unknown): MappedArch | undefined {
  return isMappedArch(v) ? v : undefined;
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** Architecture and head counts a file declares: GGUF metadata, or the config.json beside a checkpoint. */
function sideContext(model: OpenedModel): SideContext {
  const { file } = model;
  if (file.format === 'gguf') {
    const arch = asMappedArch(file.metadata.get('general.architecture'));
    const heads = arch === undefined ? undefined : positiveInt(file.metadata.get(`${arch}.attention.head_count`));
    const kvHeads = arch === undefined ? undefined : positiveInt(file.metadata.get(`${arch}.attention.head_count_kv`));
    return { model, layout: 'gguf', arch, heads: heads === undefined ? undefined : { heads, kvHeads: kvHeads ?? heads } };
  }
  const config = readCheckpointConfig(model);
  const arch = asMappedArch(config?.['model_type']) ?? archFromHfNames(file.tensors.map((t) => t.name));
  const heads = positiveInt(config?.['num_attention_heads'] ?? config?.['n_head']);
  const kvHeads = positiveInt(config?.['num_key_value_heads']);
  return { model, layout: 'hf', arch, heads: heads === undefined ? undefined : { heads, kvHeads: kvHeads ?? heads } };
}

/** The name both sides are keyed on: GGUF-style names stay, HF names are mapped when the arch is known. */
function keyOf(name: string, arch: MappedArch | undefined): string {
  if (arch === undefined || isGgufStyleName(name)) return name;
  return hfToGguf(arch, name)?.name ?? name;
}

/** Decode a tensor and, when `undo` is given (its side is in GGUF layout, the other not), bring it to HF layout. */
function comparable(
  model: OpenedModel,
  entry: TensorEntry,
  key: string,
  arch: MappedArch | undefined,
  undo: { heads: HeadCounts | undefined } | undefined,
): { values: Float32Array; shape: number[]; undone: LayoutTransform } {
  const values = decodeTensor(model.file, model.src, entry);
  if (undo === undefined || arch === undefined) return { values, shape: [...entry.shape], undone: 'none' };
  const transform = ggufToHf(arch, key)?.transform ?? 'none';
  return { ...undoGgufLayout(transform, values, entry.shape, undo.heads), undone: transform };
}

/** Compare two opened files. A is the reference (SQNR's signal). */
export function diffModels(a: OpenedModel, b: OpenedModel): DiffReport {
  const ca = sideContext(a);
  const cb = sideContext(b);
  // A GGUF side knows its architecture (llama vs qwen2 matters for the permutation): it wins.
  const arch = (ca.layout === 'gguf' ? ca.arch : undefined) ?? (cb.layout === 'gguf' ? cb.arch : undefined) ?? ca.arch ?? cb.arch;
  const layoutsDiffer = ca.layout !== cb.layout;
  // Undoing the permutation needs the head counts; a side that does not declare them borrows the other's.
  const heads = { a: ca.heads ?? cb.heads, b: cb.heads ?? ca.heads };

  const index = (c: SideContext): Map<string, TensorEntry> => {
    const m = new Map<string, TensorEntry>();
    for (const t of c.model.file.tensors) {
      const key = keyOf(t.name, arch);
      // Two names mapping to one key (`transformer.wte.weight` beside `wte.weight`): keep the second verbatim.
      m.set(m.has(key) ? t.name : key, t);
    }
    return m;
  };
  const ia = index(ca);
  const ib = index(cb);

  const tensors: DiffTensor[] = [];
  for (const [key, ea] of ia) {
    const eb = ib.get(key);
    if (eb === undefined) continue;
    const side = (e: TensorEntry, undone: LayoutTransform): DiffSide => ({ name: e.name, shape: [...e.shape], dtype: e.dtype, undone });
    const isDtypeEqual = ea.dtype === eb.dtype;
    try {
      const va = comparable(a, ea, key, arch, layoutsDiffer && ca.layout === 'gguf' ? { heads: heads.a } : undefined);
      const vb = comparable(b, eb, key, arch, layoutsDiffer && cb.layout === 'gguf' ? { heads: heads.b } : undefined);
      const isShapeEqual = va.shape.length === vb.shape.length && va.shape.every((d, i) => d === vb.shape[i]);
      tensors.push({
        key,
        a: side(ea, va.undone),
        b: side(eb, vb.undone),
        isShapeEqual,
        isDtypeEqual,
        metrics: isShapeEqual ? pairMetrics(va.values, vb.values) : null,
      });
    } catch (e) {
      const isShapeEqual = ea.shape.length === eb.shape.length && ea.shape.every((d, i) => d === eb.shape[i]);
      tensors.push({ key, a: side(ea, 'none'), b: side(eb, 'none'), isShapeEqual, isDtypeEqual, metrics: null, error: errorMessage(e) });
    }
  }
  const onlyInA = [...ia].filter(([k]) => !ib.has(k)).map(([, e]) => e.name);
  const onlyInB = [...ib].filter(([k]) => !ia.has(k)).map(([, e]) => e.name);

  const withMetrics = tensors.flatMap((t) => (t.metrics === null ? [] : [t.metrics]));
  const sqnrs = withMetrics.map((m) => m.sqnrDb);
  const cosines = withMetrics.flatMap((m) => (m.cosine === null ? [] : [m.cosine]));
  const info = (m: OpenedModel): DiffFileInfo => ({
    file: m.path,
    format: m.file.format,
    issues: m.file.issues,
    tensorCount: m.file.tensors.length,
  });
  return {
    a: info(a),
    b: info(b),
    arch: arch ?? null,
    tensors,
    onlyInA,
    onlyInB,
    summary: {
      matched: tensors.length,
      identical: withMetrics.filter((m) => m.isIdentical).length,
      shapeMismatches: tensors.filter((t) => !t.isShapeEqual).length,
      dtypeMismatches: tensors.filter((t) => !t.isDtypeEqual).length,
      minSqnrDb: sqnrs.length === 0 ? null : Math.min(...sqnrs),
      minCosine: cosines.length === 0 ? null : Math.min(...cosines),
    },
  };
}

/** The human-readable form of a diff report. */
export function diffText(r: DiffReport): string[] {
  const lines = [
    `A: ${r.a.file} (${r.a.format}, ${r.a.tensorCount} tensors)`,
    `B: ${r.b.file} (${r.b.format}, ${r.b.tensorCount} tensors)`,
  ];
  for (const [side, info] of [
    ['A', r.a],
    ['B', r.b],
  ] as const)
    for (const i of info.issues) lines.push(`${side}: ${issueLine(i)}`);
  lines.push(`arch for name mapping: ${r.arch ?? 'none (names matched verbatim)'}`);
  const rows = r.tensors.map((t) => {
    const m = t.metrics;
    const shape = t.isShapeEqual ? `[${t.a.shape.join(', ')}]` : `[${t.a.shape.join(', ')}] ≠ [${t.b.shape.join(', ')}]`;
    const dtype = t.isDtypeEqual ? t.a.dtype : `${t.a.dtype}→${t.b.dtype}`;
    const undone = [t.a.undone, t.b.undone].filter((u) => u !== 'none').join(',');
    return [
      t.a.name === t.b.name ? t.a.name : `${t.a.name} ~ ${t.b.name}`,
      shape,
      dtype,
      undone,
      m === null ? (t.error ?? '-') : m.isIdentical ? 'identical' : fmt(m.sqnrDb, 4),
      fmt(m?.cosine, 7),
      fmt(m?.maxAbsDiff),
    ];
  });
  lines.push(...textTable(['tensor', 'shape', 'dtype', 'undone', 'sqnr_db', 'cosine', 'max_abs_diff'], rows));
  if (r.onlyInA.length > 0) lines.push(`only in A (${r.onlyInA.length}): ${r.onlyInA.join(', ')}`);
  if (r.onlyInB.length > 0) lines.push(`only in B (${r.onlyInB.length}): ${r.onlyInB.join(', ')}`);
  const s = r.summary;
  lines.push(
    `${s.matched} matched, ${s.identical} identical, ${s.shapeMismatches} shape and ${s.dtypeMismatches} dtype differences; ` +
      `min SQNR ${fmt(s.minSqnrDb)} dB, min cosine ${fmt(s.minCosine, 7)}`,
  );
  return lines;
}

/** `tmgt diff A B [--json]`; returns the exit code. Unreadable input throws HarnessError (exit 2). */
export function diff(args: string[], out: (s: string) => void = (s) => process.stdout.write(s)): number {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 2) throw new UsageError('diff needs two files: A B');
  const a = openModelFile(positionals[0] as string); // two positionals: checked above
  let b: OpenedModel | undefined;
  try {
    b = openModelFile(positionals[1] as string); // two positionals: checked above
    for (const m of [a, b]) {
      const fatal = m.file.issues.find((i) => i.fatal);
      if (fatal) throw new HarnessError('E-INPUT', `cannot read ${m.path}: ${issueLine(fatal)}`);
    }
    const report = diffModels(a, b);
    out((values.json ? reportJson(report) : diffText(report).map(terminalSafe).join('\n')) + '\n');
    return DIFF_EXIT.ok;
  } finally {
    a.close();
    b?.close();
  }
}
