/** `reports/parity.json` and the console lines, from results (pure: results in, data or text out). */
import type { CellResult, CheckResult, ParityReport, ReportSummary } from '../contracts/results.js';

export type { ParityReport } from '../contracts/results.js';

/** Counts of checks: one rule for pass/warn/fail, shared by the CLI, the reports and suites/. */
export function summarize(cells: readonly CellResult[]): ReportSummary {
  const checks: CheckResult[] = cells.flatMap((c) => c.checks);
  const count = (s: CheckResult['status']) => checks.filter((c) => c.status === s).length;
  return { checks: checks.length, passed: count('pass'), warned: count('warn'), failed: count('fail') };
}

/** Whether a check counts as holding: pass and warn do, fail does not. */
export function holds(check: Pick<CheckResult, 'status'>): boolean {
  return check.status !== 'fail';
}

export function parityReport(cells: CellResult[], version: string, extra: Pick<ParityReport, 'incomplete' | 'mutants'> = {}): ParityReport {
  const converters: Record<string, ReportSummary> = {};
  for (const id of new Set(cells.map((c) => c.converter))) converters[id] = summarize(cells.filter((c) => c.converter === id));
  return { schemaVersion: 2, tool: { name: 'tiny-model-ground-truth', version }, ...extra, summary: summarize(cells), converters, cells };
}

/** Characters a terminal would act on (escape sequences, other controls) shown escaped: file-derived strings are hostile. */
export function terminalSafe(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Console lines: one per failing verdict, `error: <CODE> Tensor '<name>': <message>` (one `warning:` per warning),
 * then the summary line `parity: N/M checks passing`.
 */
export function consoleLines(report: ParityReport): string[] {
  const lines: string[] = [];
  for (const cell of report.cells) {
    if (cell.status === 'skipped') lines.push(`skipped: ${cell.converter} ${cell.model} ${cell.target}: ${terminalSafe(cell.reason)}`);
    for (const check of cell.checks) {
      for (const v of check.verdicts) {
        const where =
          v.tensor !== undefined
            ? `Tensor '${v.tensor}'`
            : `${cell.model} ${cell.target} ${check.suite}${check.prompt === undefined ? '' : ` ${JSON.stringify(check.prompt)}`}`;
        lines.push(terminalSafe(`${v.status === 'fail' ? 'error' : 'warning'}: ${v.code} ${where}: ${v.message}`));
      }
    }
  }
  const { passed, warned, checks } = report.summary;
  const warnings = warned > 0 ? ` (${warned} with warnings)` : '';
  lines.push(`parity: ${passed + warned}/${checks} checks passing${warnings}${report.incomplete ? ' — incomplete run' : ''}`);
  return lines;
}
