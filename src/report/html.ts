/**
 * `reports/index.html`: one self-contained dashboard (no external request, opens from disk).
 *
 * Layout, in reading order: the totals and per-converter N/M (against the previous run); a heatmap of
 * model × target per converter, each cell coloured by its worst verdict and labelled with the first code to
 * fire; what failed first and biggest (the failure groups of ticket.ts, root causes first, their likely
 * consequences folded away); the trend against the previous run (one line per regressed cell); the mutant
 * kill matrix; then a drill-down per cell (checks with their verdict lines, the sortable and filterable
 * per-tensor table, logits metrics with a per-position KL chart, first diverging layer, the greedy
 * continuation beside the oracle's).
 *
 * Safety: every string from a report (tensor names and metadata come from files a converter wrote) reaches
 * the page through eta with autoEscape on, or through the inline script's `textContent`; data for the script
 * sits in a `<script type="application/json">` block with `<`, `>`, `&`, U+2028/9 written as JSON `\u` escapes.
 * The CSP allows no network at all and only the page's own script, by hash, so even an escaping bug could
 * not run an injected handler.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { CellResult, CheckResult, ParityReport, ReportSummary, TensorRow } from '../contracts/results.js';
import { CODES, type VerdictCode } from '../contracts/verdicts.js';
import { sortCells, summarizeCells } from './merge.js';
import { failureGroups, firingRank, type FailureGroup } from './ticket.js';

const TEMPLATES = new URL('./templates/', import.meta.url);
const eta = new Eta({ views: fileURLToPath(TEMPLATES), autoEscape: true, autoTrim: [false, 'nl'], cache: true, useWith: false });

type HeatStatus = 'pass' | 'warn' | 'fail' | 'skipped';

/** One heatmap square. */
interface HeatCell {
  id: string;
  status: HeatStatus;
  label: string;
  worst: string;
  title: string;
}

interface Chart {
  width: number;
  height: number;
  left: number;
  bottom: number;
  path: string;
  area: string;
  meanY: number;
  meanLabel: string;
  yTicks: { y: number; label: string }[];
  xTicks: { x: number; label: string }[];
  worst: { x: number; y: number; label: string };
}

interface PromptView {
  prompt: string;
  status: HeatStatus;
  metrics: { name: string; value: string; bad: boolean }[];
  firstDivergingLayer?: string;
  chart?: Chart;
  chartTitle?: string;
  text?: { prefix: string; oracleRest: string; candidateRest: string };
}

interface CellView {
  id: string;
  converter: string;
  model: string;
  target: string;
  engine: string;
  status: HeatStatus;
  reason?: string;
  passed: number;
  total: number;
  seconds: string;
  worst: string;
  firstDivergingLayer?: string;
  checks: { suite: string; prompt?: string; note?: string; status: string; lines: string[] }[];
  prompts: PromptView[];
  tensorCount: number;
  badTensors: number;
}

/** The checks of one cell that changed the same way since the previous run (a cell regresses as a whole, so it reads as one line). */
interface TrendRow {
  converter: string;
  model: string;
  target: string;
  id: string;
  /** How many checks. */
  count: number;
  /** Per suite, e.g. `logits ×4`. */
  suites: string;
  /** The distinct failing codes (now, or before for newly passing checks), earliest-firing first. */
  codes: string[];
}

/** Fold per-check changes into one row per cell. */
function foldTrend(changes: { cell: CellResult; check: CheckResult; code?: VerdictCode }[], ids: Map<CellResult, string>): TrendRow[] {
  const rows = new Map<CellResult, { suites: Map<string, number>; codes: Set<VerdictCode>; count: number }>();
  for (const { cell, check, code } of changes) {
    const r = rows.get(cell) ?? { suites: new Map<string, number>(), codes: new Set<VerdictCode>(), count: 0 };
    r.count++;
    r.suites.set(check.suite, (r.suites.get(check.suite) ?? 0) + 1);
    if (code !== undefined) r.codes.add(code);
    rows.set(cell, r);
  }
  return [...rows].map(([cell, r]) => ({
    converter: cell.converter,
    model: cell.model,
    target: cell.target,
    id: ids.get(cell) ?? '',
    count: r.count,
    suites: [...r.suites].map(([s, n]) => (n > 1 ? `${s} ×${n}` : s)).join(', '),
    codes: [...r.codes].sort((a, b) => firingRank(a) - firingRank(b)),
  }));
}

/** Options of `renderHtml`. */
export interface HtmlOptions {
  /** The previous run's report: the trend (per-converter deltas, checks newly failing or passing) is computed against it. */
  previous?: ParityReport;
  /** Shown in the header (e.g. the commit or the run's date); nothing volatile is added otherwise, so output is deterministic. */
  subtitle?: string;
}

const STATUS_RANK: Record<HeatStatus, number> = { skipped: 0, pass: 1, warn: 2, fail: 3 };

function checkKey(cell: CellResult, check: CheckResult): string {
  return JSON.stringify([cell.converter, cell.model, cell.target, cell.engine, check.suite, check.prompt ?? null]);
}

function checkName(check: CheckResult): string {
  return check.prompt === undefined ? check.suite : `${check.suite} “${check.prompt}”`;
}

/** The worst verdict of a cell: its status, and the earliest-firing failing code (what to look at first). */
function worstOf(cell: CellResult): { status: HeatStatus; code?: VerdictCode } {
  if (cell.status === 'skipped') return { status: 'skipped' };
  let status: HeatStatus = 'pass';
  let code: VerdictCode | undefined;
  for (const check of cell.checks) {
    if (STATUS_RANK[check.status] > STATUS_RANK[status]) status = check.status;
    for (const v of check.verdicts) {
      if (v.status !== 'fail' && status === 'fail') continue;
      if (code === undefined || firingRank(v.code) < firingRank(code)) code = v.code;
    }
  }
  return code === undefined ? { status } : { status, code };
}

/** A metric for display. A parity.json that went through JSON holds null where the value was NaN or ±Infinity. */
const fmtMetric = (v: number | null): string =>
  v === null || !Number.isFinite(v)
    ? v === null
      ? 'non-finite'
      : String(v)
    : Number.isInteger(v)
      ? v.toLocaleString('en-US')
      : v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)
        ? v.toExponential(2)
        : v.toPrecision(4);

/** Static SVG of KL per position, log-scaled (KL spans 1e-9 … 10 across a good and a broken run). */
function klChart(kl: number[]): Chart | undefined {
  if (kl.length < 2) return undefined;
  const width = 640;
  const height = 150;
  const left = 52;
  const right = 12;
  const top = 10;
  const bottom = 24;
  const positive = kl.filter((x) => x > 0 && Number.isFinite(x));
  const hi = Math.max(1e-6, ...positive);
  const lo = Math.min(hi / 10, ...positive, 1e-3);
  const lhi = Math.ceil(Math.log10(hi));
  const llo = Math.max(lhi - 12, Math.floor(Math.log10(lo)));
  const x = (i: number): number => left + (i / (kl.length - 1)) * (width - left - right);
  const y = (v: number): number => {
    const lv = Math.log10(Math.max(v, 10 ** llo));
    return top + (1 - (lv - llo) / (lhi - llo)) * (height - top - bottom);
  };
  const r = (n: number): string => n.toFixed(1);
  const pts = kl.map((v, i) => `${r(x(i))},${r(y(Number.isFinite(v) ? v : 10 ** lhi))}`);
  const path = `M${pts.join('L')}`;
  const area = `${path}L${r(x(kl.length - 1))},${r(height - bottom)}L${r(x(0))},${r(height - bottom)}Z`;
  const mean = kl.reduce((a, b) => a + b, 0) / kl.length;
  const step = Math.max(1, Math.ceil((lhi - llo) / 4));
  const yTicks: Chart['yTicks'] = [];
  for (let e = lhi; e >= llo; e -= step) yTicks.push({ y: y(10 ** e), label: `1e${e}` });
  const xStep = Math.max(1, Math.ceil(kl.length / 8 / 5) * 5);
  const xTicks: Chart['xTicks'] = [];
  for (let i = 0; i < kl.length; i += xStep) xTicks.push({ x: x(i), label: String(i) });
  let wi = 0;
  kl.forEach((v, i) => {
    if (v > (kl[wi] as number)) wi = i; // wi < kl.length
  });
  const wv = kl[wi] as number; // wi < kl.length
  return {
    width,
    height,
    left,
    bottom,
    path,
    area,
    meanY: y(mean),
    meanLabel: `mean ${fmtMetric(mean)}`,
    yTicks,
    xTicks,
    worst: { x: x(wi), y: y(wv), label: `max ${fmtMetric(wv)} @ ${wi}` },
  };
}

function splitText(oracle: string, candidate: string): PromptView['text'] {
  const a = [...oracle];
  const b = [...candidate];
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return { prefix: a.slice(0, i).join(''), oracleRest: a.slice(i).join(''), candidateRest: b.slice(i).join('') };
}

/** Metric names whose value is over a bound named in a failing verdict's evidence are shown in red. */
function badMetrics(check: CheckResult): Set<string> {
  const bad = new Set<string>();
  for (const v of check.verdicts) {
    if (v.status !== 'fail') continue;
    for (const k of Object.keys(v.evidence)) if (check.metrics && k in check.metrics) bad.add(k);
  }
  return bad;
}

function promptViews(cell: CellResult): PromptView[] {
  const byPrompt = new Map<string, CheckResult[]>();
  for (const check of cell.checks) {
    if (check.prompt === undefined) continue;
    byPrompt.set(check.prompt, [...(byPrompt.get(check.prompt) ?? []), check]);
  }
  const out: PromptView[] = [];
  for (const [prompt, checks] of byPrompt) {
    const isReal = checks.some((c) => c.metrics !== undefined || c.detail !== undefined);
    if (!isReal) continue;
    const view: PromptView = { prompt, status: 'pass', metrics: [] };
    for (const check of checks) {
      if (STATUS_RANK[check.status] > STATUS_RANK[view.status]) view.status = check.status;
      const bad = badMetrics(check);
      for (const [name, value] of Object.entries(check.metrics ?? {})) {
        view.metrics.push({ name: `${check.suite}.${name}`, value: fmtMetric(value), bad: bad.has(name) });
      }
      const d = check.detail;
      if (!d) continue;
      if (d.firstDivergingLayer !== undefined) view.firstDivergingLayer = d.firstDivergingLayer;
      if (d.klPerPosition && !view.chart) {
        const chart = klChart(d.klPerPosition);
        if (chart) {
          view.chart = chart;
          view.chartTitle =
            check.suite === 'cross-runtime' ? 'KL(bundled ‖ llama.cpp) per position' : 'KL(oracle ‖ candidate) per position';
        }
      }
      if (d.oracleText !== undefined && d.candidateText !== undefined) view.text = splitText(d.oracleText, d.candidateText);
    }
    out.push(view);
  }
  return out;
}

/**
 * The checks of a cell as table rows. Checks whose verdict lines are identical (a prerequisite failure
 * repeated on every prompt-level claim) collapse into one row naming them all, so the distinct findings
 * are what the reader sees.
 */
function checkRows(cell: CellResult): CellView['checks'] {
  const rows: (CellView['checks'][number] & { key: string; names: string[] })[] = [];
  for (const check of cell.checks) {
    // The cell and prompt are already on screen: a verdict line here is code, tensor and message only.
    const lines = check.verdicts.map((v) => `${v.code}${v.tensor === undefined ? '' : ` '${v.tensor}'`}: ${v.message}`);
    const key = JSON.stringify([check.status, lines]);
    const same = lines.length > 0 ? rows.find((r) => r.key === key) : undefined;
    if (same) {
      same.names.push(checkName(check));
      continue;
    }
    rows.push({
      key,
      names: [checkName(check)],
      suite: check.suite,
      ...(check.prompt === undefined ? {} : { prompt: check.prompt }),
      status: check.status,
      lines,
    });
  }
  return rows.map(({ key: _key, names, ...r }) => {
    if (names.length === 1) return r;
    const suites = [...new Set(names.map((n) => n.split(' ')[0]))];
    return { suite: suites.join(', '), note: `${names.length} checks with the same verdict`, status: r.status, lines: r.lines };
  });
}

function cellView(cell: CellResult, id: string): CellView {
  const worst = worstOf(cell);
  const passed = cell.checks.filter((c) => c.status !== 'fail').length;
  const prompts = cell.status === 'done' ? promptViews(cell) : [];
  const fdl = prompts.find((p) => p.firstDivergingLayer !== undefined)?.firstDivergingLayer;
  const tensors = cell.status === 'done' ? (cell.tensors ?? []) : [];
  const view: CellView = {
    id,
    converter: cell.converter,
    model: cell.model,
    target: cell.target,
    engine: cell.engine,
    status: worst.status,
    passed,
    total: cell.checks.length,
    seconds: (cell.durationMs / 1000).toFixed(1),
    worst: worst.code ?? '',
    checks: checkRows(cell),
    prompts,
    tensorCount: tensors.length,
    badTensors: tensors.filter((t) => t.codes.length > 0).length,
  };
  if (cell.status === 'skipped') view.reason = cell.reason;
  if (fdl !== undefined) view.firstDivergingLayer = fdl;
  return view;
}

function heatmaps(
  cells: { cell: CellResult; id: string }[],
): { converter: string; models: string[]; targets: string[]; grid: (HeatCell | null)[][] }[] {
  const converters = [...new Set(cells.map((c) => c.cell.converter))];
  return converters.map((converter) => {
    const mine = cells.filter((c) => c.cell.converter === converter);
    const models = [...new Set(mine.map((c) => c.cell.model))];
    const targets = [...new Set(mine.map((c) => c.cell.target))];
    const grid = models.map((model) =>
      targets.map((target): HeatCell | null => {
        const found = mine.filter((c) => c.cell.model === model && c.cell.target === target);
        const first = found[0];
        if (!first) return null;
        const w = worstOf(first.cell);
        const passed = first.cell.checks.filter((c) => c.status !== 'fail').length;
        const label = first.cell.status === 'skipped' ? 'skipped' : `${passed}/${first.cell.checks.length}`;
        const worst = w.code === undefined ? '' : w.code.replace(/^F-/, '').replace('-CONTRACT-', '-');
        const title =
          first.cell.status === 'skipped'
            ? `${model} × ${target}: skipped — ${first.cell.reason}`
            : `${model} × ${target}: ${label} checks passing${w.code ? `; first failure ${w.code} (${CODES[w.code].title})` : ''}`;
        return { id: first.id, status: w.status, label, worst, title };
      }),
    );
    return { converter, models, targets, grid };
  });
}

function trend(
  report: ParityReport,
  previous: ParityReport,
  ids: Map<CellResult, string>,
): { newlyFailing: TrendRow[]; newlyPassing: TrendRow[]; failingCount: number; passingCount: number; added: number; removed: number } {
  const before = new Map<string, CheckResult>();
  for (const cell of previous.cells) for (const check of cell.checks) before.set(checkKey(cell, check), check);
  const seen = new Set<string>();
  const newlyFailing: { cell: CellResult; check: CheckResult; code?: VerdictCode }[] = [];
  const newlyPassing: typeof newlyFailing = [];
  let added = 0;
  for (const cell of report.cells) {
    for (const check of cell.checks) {
      const key = checkKey(cell, check);
      seen.add(key);
      const was = before.get(key);
      if (!was) {
        added++;
        continue;
      }
      const code = check.verdicts.find((v) => v.status === 'fail')?.code;
      if (check.status === 'fail' && was.status !== 'fail') newlyFailing.push(code === undefined ? { cell, check } : { cell, check, code });
      if (check.status !== 'fail' && was.status === 'fail') {
        const old = was.verdicts.find((v) => v.status === 'fail')?.code;
        newlyPassing.push(old === undefined ? { cell, check } : { cell, check, code: old });
      }
    }
  }
  const removed = [...before.keys()].filter((k) => !seen.has(k)).length;
  return {
    newlyFailing: foldTrend(newlyFailing, ids),
    newlyPassing: foldTrend(newlyPassing, ids),
    failingCount: newlyFailing.length,
    passingCount: newlyPassing.length,
    added,
    removed,
  };
}

function mutantMatrix(report: ParityReport):
  | {
      columns: string[];
      rows: { mutant: string; expected: string; entries: ({ killed: boolean; got: string; title: string } | null)[] }[];
      killed: number;
      total: number;
    }
  | undefined {
  const m = report.mutants;
  if (!m || m.length === 0) return undefined;
  const columns = [...new Set(m.map((x) => x.model))];
  const mutants = [...new Set(m.map((x) => x.mutant))];
  const rows = mutants.map((mutant) => {
    const mine = m.filter((x) => x.mutant === mutant);
    return {
      mutant,
      expected: mine[0]?.expected ?? '',
      entries: columns.map((model) => {
        const e = mine.find((x) => x.model === model);
        if (!e) return null;
        const got = e.got.join(', ');
        return { killed: e.killed, got, title: `${mutant} × ${model} @ ${e.target}: expected ${e.expected}; got ${got || 'nothing'}` };
      }),
    };
  });
  return { columns, rows, killed: m.filter((x) => x.killed).length, total: m.length };
}

/** The first verdict line of a group without its `error: CODE` prefix, capped: the diagnosis a reader wants first. */
function firstMessage(g: FailureGroup): string {
  const line = g.lines[0] ?? '';
  const rest = line.replace(/^(error|warning): \S+ /, '');
  return rest.length > 220 ? `${rest.slice(0, 219)}…` : rest;
}

/** JSON for an inline `<script type="application/json">`: `<`, `>`, `&` and U+2028/U+2029 as `\u` escapes (still valid JSON). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function pct(s: ReportSummary): number {
  return s.checks === 0 ? 100 : Math.round((1000 * s.passed) / s.checks) / 10;
}

/** The dashboard for `report` as one HTML document. Deterministic: the same report gives the same bytes. */
export function renderHtml(report: ParityReport, opts: HtmlOptions = {}): string {
  const ordered = sortCells(report.cells);
  const ids = new Map<CellResult, string>();
  const withIds = ordered.map((cell, i) => {
    const id = `cell-${i + 1}`;
    ids.set(cell, id);
    return { cell, id };
  });
  const groups: FailureGroup[] = failureGroups(report);
  const firstCellOf = (g: FailureGroup): string => {
    const hit = withIds.find(
      ({ cell }) => cell.converter === g.converter && g.rows.some((r) => r.model === cell.model && r.target === cell.target),
    );
    return hit?.id ?? '';
  };
  const tensors: Record<string, TensorRow[]> = {};
  for (const { cell, id } of withIds) if (cell.status === 'done' && cell.tensors) tensors[id] = cell.tensors;

  const script = readFileSync(new URL('dashboard.js', TEMPLATES), 'utf8');
  const css = readFileSync(new URL('dashboard.css', TEMPLATES), 'utf8');
  const scriptHash = createHash('sha256').update(script, 'utf8').digest('base64');
  const csp = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `script-src 'sha256-${scriptHash}'`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  const prev = opts.previous;
  // Recounted from the cells rather than read from `converters`: the previous night's parity.json may predate
  // schemaVersion 2 (no per-converter counts), and its cells and checks carry all the trend needs.
  const prevConverters = prev ? summarizeCells(prev.cells).converters : undefined;
  const view = {
    csp,
    css,
    script,
    data: scriptJson({ tensors }),
    tool: report.tool,
    subtitle: opts.subtitle ?? '',
    incomplete: report.incomplete === true,
    summary: report.summary,
    pct: pct(report.summary),
    prevSummary: prev?.summary,
    converters: Object.entries(report.converters).map(([name, s]) => {
      const p = prevConverters?.[name];
      return { name, s, pct: pct(s), prev: p, delta: p ? s.passed - p.passed : undefined, failDelta: p ? s.failed - p.failed : undefined };
    }),
    groups: groups.map((g, i) => ({
      n: i + 1,
      code: g.code,
      codeTitle: CODES[g.code].title,
      role: g.role,
      converter: g.converter,
      severity: g.severity,
      level: CODES[g.code].level,
      cells: new Set(g.rows.map((r) => `${r.model}|${r.target}`)).size,
      verdicts: g.lines.length,
      first: g.rows[0],
      message: firstMessage(g),
      cause: g.likelyCauseOf === undefined ? undefined : g.likelyCauseOf + 1,
      href: firstCellOf(g),
    })),
    heatmaps: heatmaps(withIds),
    trend: prev ? trend(report, prev, ids) : undefined,
    mutants: mutantMatrix(report),
    cells: withIds.map(({ cell, id }) => cellView(cell, id)),
  };
  return eta.render('./dashboard', view);
}
