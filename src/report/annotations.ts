/**
 * GitHub Actions workflow commands for a report (`::error title=CODE::message`), printed when
 * GITHUB_ACTIONS=true so each failing verdict shows on the run's summary page.
 *
 * Escaping follows @actions/core's `issueCommand` (toolkit packages/core/src/command.ts): in the message,
 * `%` → `%25`, CR → `%0D`, LF → `%0A`; in a property value also `:` → `%3A` and `,` → `%2C`. Without it a
 * newline in a message would end the command and start a new one from file-controlled text.
 */
import type { ParityReport } from '../contracts/results.js';

/** Escape the data part of a workflow command. */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** Escape a property value (`title=…`) of a workflow command. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** GitHub shows at most 10 error and 10 warning annotations per step; the rest go to one summary line. */
const MAX_PER_KIND = 10;

/** One workflow command per failing (`::error`) or warning (`::warning`) verdict, then a `::notice` with the totals. */
export function githubAnnotations(report: ParityReport, opts: { maxPerKind?: number } = {}): string[] {
  const max = opts.maxPerKind ?? MAX_PER_KIND;
  const out: string[] = [];
  const shown = { error: 0, warning: 0 };
  const hidden = { error: 0, warning: 0 };
  for (const cell of report.cells) {
    for (const check of cell.checks) {
      for (const v of check.verdicts) {
        const kind = v.status === 'fail' ? 'error' : 'warning';
        if (shown[kind] >= max) {
          hidden[kind]++;
          continue;
        }
        shown[kind]++;
        const where = [
          cell.converter,
          cell.model,
          cell.target,
          check.suite,
          check.prompt === undefined ? undefined : JSON.stringify(check.prompt),
        ]
          .filter((x) => x !== undefined)
          .join(' ');
        const tensor = v.tensor !== undefined ? `Tensor '${v.tensor}': ` : '';
        out.push(`::${kind} title=${escapeProperty(v.code)}::${escapeData(`${where}: ${tensor}${v.message}`)}`);
      }
    }
  }
  const { passed, checks } = report.summary;
  const more =
    hidden.error + hidden.warning > 0 ? ` (${hidden.error} more errors and ${hidden.warning} more warnings in reports/junit.xml)` : '';
  out.push(`::notice title=${escapeProperty('parity')}::${escapeData(`${passed}/${checks} checks passing${more}`)}`);
  return out;
}
