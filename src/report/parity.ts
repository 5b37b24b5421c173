import type { CheckResult } from '../checks/codes.js';

/** The shape of `reports/parity.json` (schemaVersion 1). */
export interface ParityReport {
  schemaVersion: 1;
  tool: { name: 'tiny-model-ground-truth'; version: string };
  summary: { checks: number; passed: number; failed: number };
  cells: {
    converter: string;
    model: string;
    target: string;
    engine: string;
    durationMs: number;
    /** Why the cell did not run (e.g. an external converter not installed); such a cell has no checks. */
    skipped?: string;
    checks: CheckResult[];
  }[];
}

export function summarize(cells: ParityReport['cells']): ParityReport['summary'] {
  const checks = cells.flatMap((c) => c.checks);
  const passed = checks.filter((c) => c.status === 'pass').length;
  return { checks: checks.length, passed, failed: checks.length - passed };
}

export function parityReport(cells: ParityReport['cells'], version: string): ParityReport {
  return { schemaVersion: 1, tool: { name: 'tiny-model-ground-truth', version }, summary: summarize(cells), cells };
}

/** Console lines: one per failing verdict, `error: <CODE> Tensor '<name>': <message>`, then the summary line. */
export function consoleLines(report: ParityReport): string[] {
  const lines: string[] = [];
  for (const cell of report.cells) {
    if (cell.skipped !== undefined) lines.push(`skipped: ${cell.converter} ${cell.model} ${cell.target}: ${cell.skipped}`);
    for (const check of cell.checks) {
      for (const v of check.verdicts) {
        if (v.status !== 'fail') continue;
        const where = v.tensor !== undefined ? `Tensor '${v.tensor}'` : `${cell.model} ${cell.target} ${check.suite}${check.prompt === undefined ? '' : ` ${JSON.stringify(check.prompt)}`}`;
        lines.push(`error: ${v.code} ${where}: ${v.message}`);
      }
    }
  }
  lines.push(`parity: ${report.summary.passed}/${report.summary.checks} checks passing`);
  return lines;
}
