/**
 * Everything a run leaves in its report directory, written from one report: parity.json (validated against the
 * committed schema), index.html (against the previous run's parity.json when there is one), junit.xml; and GitHub
 * Actions annotations on stdout when GITHUB_ACTIONS=true. Files are written atomically (temp + rename).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ParityReport } from '../contracts/results.js';
import { HarnessError } from '../errors.js';
import { githubAnnotations } from '../report/annotations.js';
import { renderHtml } from '../report/html.js';
import { renderJunit } from '../report/junit.js';
import { validateReport } from '../report/schema.js';

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** A report read back from disk, validated; undefined when the file is missing or not a valid report (a trend baseline is optional). */
export function readReport(path: string): ParityReport | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return validateReport(value).length === 0 ? (value as ParityReport) : undefined; // validated against the schema just above
  } catch {
    return undefined;
  }
}

/** A report that must exist and be valid (tmgt ticket, tmgt report merge): a HarnessError naming the problem otherwise. */
export function requireReport(path: string): ParityReport {
  if (!existsSync(path)) throw new HarnessError('E-REPORT', `no report at ${path} (run tmgt check first)`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new HarnessError('E-REPORT', `${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const errors = validateReport(value);
  if (errors.length > 0) throw new HarnessError('E-REPORT', `${path} is not a parity report: ${errors.slice(0, 3).join('; ')}`);
  return value as ParityReport; // validated against the schema just above
}

/** Write parity.json (and, with `final`, index.html and junit.xml). A report that fails its own schema is a harness bug. */
export function writeOutputs(dir: string, report: ParityReport, opts: { final: boolean; previous?: ParityReport | undefined }): void {
  writeAtomic(join(dir, 'parity.json'), JSON.stringify(report, null, 1) + '\n');
  if (!opts.final) return;
  const errors = validateReport(JSON.parse(JSON.stringify(report)));
  if (errors.length > 0)
    throw new HarnessError('E-REPORT', `the report does not match reports/parity.schema.json: ${errors.slice(0, 3).join('; ')}`);
  writeAtomic(join(dir, 'index.html'), renderHtml(report, opts.previous === undefined ? {} : { previous: opts.previous }));
  writeAtomic(join(dir, 'junit.xml'), renderJunit(report));
  if (process.env['GITHUB_ACTIONS'] === 'true') for (const line of githubAnnotations(report)) process.stdout.write(line + '\n');
}
