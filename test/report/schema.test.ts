import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ParityReport } from '../../src/contracts/results.js';
import { CODES, SUITES } from '../../src/contracts/verdicts.js';
import { REPORT_SCHEMA_PATH, validateReport } from '../../src/report/schema.js';

const fixture = (name: string): ParityReport =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')) as ParityReport;

describe('reports/parity.schema.json', () => {
  it('accepts the reports built from real runs', () => {
    expect(validateReport(fixture('report.json'))).toEqual([]);
    expect(validateReport(fixture('previous.json'))).toEqual([]);
  });

  it('names the field that breaks the contract', () => {
    const r = fixture('report.json');
    const cell = r.cells.find((c) => c.status === 'done');
    if (!cell) throw new Error('fixture has no done cell');
    const broken = structuredClone(r) as unknown as { cells: Record<string, unknown>[]; summary: Record<string, unknown> };
    const i = r.cells.indexOf(cell);
    (broken.cells[i] as Record<string, unknown>)['status'] = 'finished';
    broken.summary['failed'] = -1;
    const errors = validateReport(broken);
    expect(errors.some((e) => e.startsWith(`/cells/${i}`))).toBe(true);
    expect(errors.some((e) => e.startsWith('/summary/failed'))).toBe(true);
  });

  it('rejects a skipped cell with checks, a failing check without a failing verdict, an unknown field', () => {
    const r = fixture('report.json');
    const skipped = {
      converter: 'c',
      model: 'm',
      target: 'gguf/f32',
      engine: 'bundled',
      durationMs: 0,
      status: 'skipped',
      reason: 'x',
      checks: [{ suite: 'file', status: 'pass', verdicts: [] }],
    };
    expect(validateReport({ ...r, cells: [skipped] })).not.toEqual([]);
    const done = {
      converter: 'c',
      model: 'm',
      target: 'gguf/f32',
      engine: 'bundled',
      durationMs: 0,
      status: 'done',
      checks: [{ suite: 'file', status: 'fail', verdicts: [] }],
    };
    expect(validateReport({ ...r, cells: [done] })).not.toEqual([]);
    expect(validateReport({ ...r, extra: 1 })).not.toEqual([]);
    expect(validateReport({ ...r, schemaVersion: 1 })).not.toEqual([]);
  });

  it('accepts the null that JSON.stringify writes for a NaN or infinite measurement', () => {
    const r = fixture('report.json');
    const cell = r.cells.find((c) => c.status === 'done' && c.checks.some((k) => k.metrics));
    const check = cell?.checks.find((k) => k.metrics);
    if (!check?.metrics) throw new Error('fixture has no metrics');
    check.metrics['nmse'] = Number.NaN;
    check.detail = { klPerPosition: [0.1, Number.POSITIVE_INFINITY, -1e-12] };
    expect(validateReport(JSON.parse(JSON.stringify(r)))).toEqual([]);
  });

  it('agrees with the contracts: every suite, every verdict code', () => {
    const schema = JSON.parse(readFileSync(REPORT_SCHEMA_PATH, 'utf8')) as {
      $defs: { suite: { enum: string[] }; code: { pattern: string } };
    };
    expect(schema.$defs.suite.enum).toEqual([...SUITES]);
    const code = new RegExp(schema.$defs.code.pattern);
    for (const c of Object.keys(CODES)) expect(c).toMatch(code);
  });
});
