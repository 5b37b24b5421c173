/**
 * `reports/TICKET.md`: one issue-ready section per failure group, for a converter author to paste into
 * their tracker. A failure group is one converter's failing verdicts with the same code on the same tensor
 * role (`output.weight` whatever the artifact calls it), across models and targets, so one bug reads as
 * one issue with an affected-models table rather than one line per cell.
 *
 * Also the grouping the HTML dashboard shows first ("what failed first and biggest"). Pure: report in, text out.
 */
import type { CellResult, CheckResult, ParityReport } from '../contracts/results.js';
import { CODES, type Verdict, type VerdictCode } from '../contracts/verdicts.js';

/** How bad a group is, from the level of its code (the earlier a level, the less of the model is usable). */
export const SEVERITIES = {
  critical: 'the artifact does not hold the model: it fails to load, or holds the wrong structure',
  high: 'the artifact loads but computes a different function (wrong values, metadata or tokenizer)',
  medium: 'outputs drift beyond the target’s bounds, or runtimes disagree',
  low: 'warnings only: the claim holds, with a finding worth reading',
} as const;
export type Severity = keyof typeof SEVERITIES;

type Level = (typeof CODES)[VerdictCode]['level'];

const LEVEL_SEVERITY: Record<Level, Exclude<Severity, 'low'>> = {
  'L0 file': 'critical',
  'L1 metadata': 'high',
  'L2 layout': 'critical',
  'L3 data quality': 'high',
  'L4 fidelity': 'high',
  'L5 logits': 'high',
  'L6 tokens': 'medium',
  cross: 'medium',
  runtime: 'critical',
};

/**
 * Where a code fires in a cell's run (DESIGN.md §2): the converter runs first, then L0–L4 on the file, then
 * the engine (F-RUNTIME-002 sits there, before L5), then L5/L6 and the cross checks. A group whose every
 * cell also fails an earlier-firing group is most likely that group's consequence.
 */
export function firingRank(code: VerdictCode): number {
  if (code === 'F-RUNTIME-001') return 0;
  if (code === 'F-RUNTIME-002') return 5.5;
  const order: Record<Level, number> = {
    runtime: 0,
    'L0 file': 1,
    'L1 metadata': 2,
    'L2 layout': 3,
    'L3 data quality': 4,
    'L4 fidelity': 5,
    'L5 logits': 6,
    'L6 tokens': 7,
    cross: 8,
  };
  return order[CODES[code].level];
}

/** One affected (model, target, tensor) of a group. */
export interface AffectedRow {
  model: string;
  target: string;
  /** The tensor as the artifact names it; '—' for a verdict about the whole cell or a prompt. */
  tensor: string;
  expected: string;
  got: string;
  code: VerdictCode;
  /** How many verdicts collapse into this row (one per prompt for prompt-level claims). */
  count: number;
}

/** A failure group: one converter, one code, one tensor role, across models and targets. */
export interface FailureGroup {
  converter: string;
  code: VerdictCode;
  /** llama.cpp role of the tensor, the tensor name when the report has no role for it, or `(suite)` for cell-level verdicts. */
  role: string;
  status: 'fail' | 'warn';
  severity: Severity;
  rows: AffectedRow[];
  /** Console-style error lines, one per verdict. */
  lines: string[];
  /** Index (in the returned list) of the earlier-firing group that explains this one in every affected cell, if any. */
  likelyCauseOf?: number;
}

const fmtNum = (n: number): string =>
  Number.isInteger(n) ? n.toLocaleString('en-US') : Math.abs(n) >= 1e-3 && Math.abs(n) < 1e5 ? n.toPrecision(4) : n.toExponential(3);

function fmt(v: unknown): string {
  if (typeof v === 'number') return fmtNum(v);
  if (Array.isArray(v)) return `[${v.map(fmt).join(', ')}]`;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return v === undefined || v === null ? '—' : JSON.stringify(v);
}

/**
 * Expected vs got, from a verdict's typed evidence. F-LAYOUT-CONTRACT-001 gives element counts
 * (`expectedElements`/`gotElements`, or `expected`/`got`); otherwise an `expected*`/`got*` pair, or a
 * measured value against its bound (`sqnrDb` vs `boundDb`, `klMean` vs `klMeanBound`, `nmse` vs `bound`).
 */
export function expectedGot(v: Verdict): { expected: string; got: string } {
  const ev = v.evidence;
  const has = (k: string): boolean => ev[k] !== undefined;
  if (v.code === 'F-LAYOUT-CONTRACT-001') {
    if (has('expectedElements') || has('gotElements')) return { expected: fmt(ev['expectedElements']), got: fmt(ev['gotElements']) };
  }
  // A metric verdict names its evidence the same way everywhere: metric, got, bound (checks/bounds.ts).
  const metric = ev['metric'];
  if (typeof metric === 'string' && has('got') && has('bound')) {
    const higher = metric === 'sqnrDb' || metric === 'sameTop1';
    return { expected: `${metric} ${higher ? '≥' : '≤'} ${fmt(ev['bound'])}`, got: `${metric} ${fmt(ev['got'])}` };
  }
  if (has('expected') || has('got')) return { expected: fmt(ev['expected']), got: fmt(ev['got']) };
  const pairs = Object.keys(ev).filter((k) => k.startsWith('expected') && has(`got${k.slice('expected'.length)}`));
  const pair =
    ['expectedElements', 'expectedShape', 'expectedBytes'].find((k) => pairs.includes(k)) ?? pairs.find((k) => !k.endsWith('Ids'));
  if (pair !== undefined) return { expected: fmt(ev[pair]), got: fmt(ev[`got${pair.slice('expected'.length)}`]) };
  if (typeof ev['sqnrDb'] === 'number' && ev['boundDb'] !== undefined)
    return { expected: `SQNR ≥ ${fmt(ev['boundDb'])} dB`, got: `${fmt(ev['sqnrDb'])} dB` };
  for (const k of Object.keys(ev)) {
    if (!k.endsWith('Bound') || typeof ev[k] !== 'number') continue;
    const metric = k.slice(0, -'Bound'.length);
    if (typeof ev[metric] === 'number') return { expected: `${metric} ≤ ${fmt(ev[k])}`, got: `${metric} ${fmt(ev[metric])}` };
  }
  if (typeof ev['bound'] === 'number') {
    const metric = Object.keys(ev).find((k) => typeof ev[k] === 'number' && k !== 'bound' && !k.startsWith('minPassing'));
    if (metric !== undefined) return { expected: `${metric} ≤ ${fmt(ev['bound'])}`, got: `${metric} ${fmt(ev[metric])}` };
  }
  return { expected: '—', got: '—' };
}

/** `error: <CODE> Tensor '<name>': <message>` (the console's line), or the cell and claim when no tensor is named. */
export function verdictLine(cell: CellResult, check: CheckResult, v: Verdict): string {
  const where =
    v.tensor !== undefined
      ? `Tensor '${v.tensor}'`
      : `${cell.model} ${cell.target} ${check.suite}${check.prompt === undefined ? '' : ` ${JSON.stringify(check.prompt)}`}`;
  return `${v.status === 'fail' ? 'error' : 'warning'}: ${v.code} ${where}: ${v.message}`;
}

/**
 * The kind of tensor a role names, across layers: `blk.3.attn_k.weight` → `blk.*.attn_k.weight` (and HF's
 * `model.layers.3.` / GPT-2's `h.3.`), so one bug in every block's attn_k is one group, not one per layer.
 */
export function roleKind(role: string): string {
  return role.replace(/^blk\.\d+\./, 'blk.*.').replace(/(^|\.)(layers|h)\.\d+\./, '$1$2.*.');
}

/** The "role" of a verdict that names no tensor: the converter or engine run for runtime codes, else the claim's suite. */
function cellLevelRole(code: VerdictCode, check: CheckResult): string {
  if (code === 'F-RUNTIME-001') return '(converter run)';
  if (code === 'F-RUNTIME-002') return '(engine run)';
  return `(${check.suite})`;
}

/** Failure groups of a report (warnings too when `includeWarnings`), earliest-firing first, then the most cells. */
export function failureGroups(report: ParityReport, opts: { includeWarnings?: boolean } = {}): FailureGroup[] {
  const groups = new Map<string, FailureGroup & { cells: Set<string> }>();
  for (const cell of report.cells) {
    if (cell.status !== 'done') continue;
    const roleOf = new Map((cell.tensors ?? []).map((t) => [t.name, t.role ?? t.name]));
    for (const check of cell.checks) {
      for (const v of check.verdicts) {
        if (v.status === 'warn' && !opts.includeWarnings) continue;
        const role = v.tensor !== undefined ? roleKind(roleOf.get(v.tensor) ?? v.tensor) : cellLevelRole(v.code, check);
        const key = JSON.stringify([cell.converter, v.code, role, v.status]);
        let g = groups.get(key);
        if (!g) {
          const severity: Severity = v.status === 'warn' ? 'low' : LEVEL_SEVERITY[CODES[v.code].level];
          g = { converter: cell.converter, code: v.code, role, status: v.status, severity, rows: [], lines: [], cells: new Set() };
          groups.set(key, g);
        }
        g.cells.add(JSON.stringify([cell.model, cell.target, cell.engine]));
        g.lines.push(verdictLine(cell, check, v));
        const tensor = v.tensor ?? '—';
        const row = g.rows.find((r) => r.model === cell.model && r.target === cell.target && r.tensor === tensor);
        if (row) row.count++;
        else g.rows.push({ model: cell.model, target: cell.target, tensor, ...expectedGot(v), code: v.code, count: 1 });
      }
    }
  }
  const severityOrder: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3 };
  const list = [...groups.values()].sort(
    (a, b) =>
      (a.status === b.status ? 0 : a.status === 'fail' ? -1 : 1) ||
      firingRank(a.code) - firingRank(b.code) ||
      severityOrder[a.severity] - severityOrder[b.severity] ||
      b.cells.size - a.cells.size ||
      (a.converter < b.converter ? -1 : a.converter > b.converter ? 1 : 0) ||
      (a.role < b.role ? -1 : a.role > b.role ? 1 : 0),
  );
  list.forEach((g, i) => {
    const cause = list.findIndex(
      (c, j) =>
        j < i &&
        c.converter === g.converter &&
        c.status === 'fail' &&
        firingRank(c.code) < firingRank(g.code) &&
        [...g.cells].every((k) => c.cells.has(k)),
    );
    if (cause >= 0) g.likelyCauseOf = cause;
  });
  return list.map(({ cells: _cells, ...g }) => g);
}

/** A cell-count phrase: "1 cell", "3 cells". */
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Markdown table cell: pipes and newlines would break the table row. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * A code span (CommonMark: delimited by a backtick run longer than any inside, padded when the text starts or ends
 * with one), for text from a model file: inside a code span GitHub renders `<img …>` as text, not as markup. In a
 * table, `|` is still escaped (GFM unescapes `\|` inside code spans in tables).
 */
export function mdCode(s: string, inTable = false): string {
  if (s === '—') return s;
  const flat = s.replace(/\r?\n/g, ' ');
  const longest = Math.max(0, ...[...flat.matchAll(/`+/g)].map((m) => m[0].length));
  const tick = '`'.repeat(longest + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  const body = inTable ? flat.replace(/\|/g, '\\|') : flat;
  return `${tick}${pad}${body}${pad}${tick}`;
}

/** A fenced block whose fence is longer than any backtick run inside (CommonMark), so a message cannot close it. */
function fence(lang: string, body: string): string {
  const longest = Math.max(2, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}${lang}\n${body}\n${f}`;
}

/** The group's title: role, what the code means, where. */
export function groupTitle(g: FailureGroup): string {
  const targets = [...new Set(g.rows.map((r) => r.target))];
  const models = [...new Set(g.rows.map((r) => r.model))];
  const role = g.role.startsWith('(') ? g.role.slice(1, -1) : mdCode(g.role);
  return `${role}: ${CODES[g.code].title} (${g.code}) — ${g.converter}, ${models.join(', ')} @ ${targets.join(', ')}`;
}

/** The commands that reproduce a group: one `check` per distinct target set, over the affected models. */
export function reproduceCommands(g: FailureGroup, command = 'npx tmgt check'): string[] {
  const byModel = new Map<string, Set<string>>();
  for (const r of g.rows) byModel.set(r.model, (byModel.get(r.model) ?? new Set()).add(r.target));
  const byTargets = new Map<string, string[]>();
  for (const [model, targets] of byModel) {
    const key = [...targets].join(',');
    byTargets.set(key, [...(byTargets.get(key) ?? []), model]);
  }
  return [...byTargets].map(
    ([targets, models]) => `${command} --models ${models.join(',')} --targets ${targets} --converter ${g.converter}`,
  );
}

const MAX_LINES = 12;

/**
 * TICKET.md: a header with the run's totals, then one section per failure group in the shape of the seed
 * report (title; source line `tiny-model-ground-truth parity checker (N/M passing)`; severity; the
 * affected-models table `Model | Target | Tensor | Expected | Got | Code`; the error lines; the commands
 * that reproduce it). `command` replaces `npx tmgt check` (e.g. `node bin/tmgt.js check`).
 */
export function renderTicket(report: ParityReport, opts: { command?: string } = {}): string {
  const groups = failureGroups(report);
  const { passed, checks } = report.summary;
  const source = `tiny-model-ground-truth parity checker (${passed}/${checks} passing)`;
  const out: string[] = [];
  out.push(`# Parity failures: ${plural(groups.length, 'failure group')}, ${passed}/${checks} checks passing`, '');
  if (groups.length === 0) {
    out.push('Every check passed: nothing to file.', '');
    return out.join('\n');
  }
  out.push(
    `Found by ${source}, ${report.tool.name} ${report.tool.version}. Each section below is one issue: same verdict code on the same`,
  );
  out.push(
    'tensor role, across models and targets. Sections are in the order the checks fire, so the first is usually the root cause.',
    '',
  );
  groups.forEach((g, i) =>
    out.push(`${i + 1}. ${groupTitle(g)}${g.likelyCauseOf !== undefined ? ` (likely a consequence of ${g.likelyCauseOf + 1})` : ''}`),
  );
  out.push('');
  groups.forEach((g, i) => {
    out.push('---', '', `## ${i + 1}. ${groupTitle(g)}`, '');
    out.push(`**Source:** ${source}  `);
    out.push(`**Severity:** ${g.severity} — ${SEVERITIES[g.severity]} (${CODES[g.code].level})  `);
    out.push(`**Converter:** \`${g.converter}\``);
    if (g.likelyCauseOf !== undefined) {
      const cause = groups[g.likelyCauseOf];
      if (cause)
        out.push(
          '',
          `> Likely a consequence of section ${g.likelyCauseOf + 1} (${cause.code} on ${cause.role}), ` +
            'which fails first in every affected cell.',
        );
    }
    out.push('', '### Affected models', '', '| Model | Target | Tensor | Expected | Got | Code |', '|---|---|---|---|---|---|');
    for (const r of g.rows) {
      const tensor = `${mdCode(r.tensor, true)}${r.count > 1 ? ` (×${r.count})` : ''}`;
      const cells = [mdCell(r.model), mdCell(r.target), tensor, mdCode(r.expected, true), mdCode(r.got, true), r.code];
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('', '### Error output', '');
    const lines = g.lines.slice(0, MAX_LINES);
    if (g.lines.length > MAX_LINES) lines.push(`… ${g.lines.length - MAX_LINES} more`);
    out.push(fence('text', lines.join('\n')), '');
    out.push('### Reproduce', '', fence('sh', reproduceCommands(g, opts.command).join('\n')), '');
  });
  return out.join('\n');
}
