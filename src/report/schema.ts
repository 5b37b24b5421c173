/**
 * The committed JSON Schema of `reports/parity.json` (reports/parity.schema.json, draft 2020-12) and a
 * validator for it, so every report a test writes can be checked against what consumers were promised.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

/** Absolute path of the committed schema. */
export const REPORT_SCHEMA_PATH = new URL('../../reports/parity.schema.json', import.meta.url);

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const schema = JSON.parse(readFileSync(REPORT_SCHEMA_PATH, 'utf8')) as object; // a JSON Schema document; ajv checks it on compile
  // strict: an unknown keyword or an ambiguous union in the schema is a bug in the schema, not a warning.
  compiled = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(schema);
  return compiled;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(root)' : e.instancePath;
  const extra = e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties' ? ` (${JSON.stringify(e.params)})` : '';
  return `${where}: ${e.message ?? e.keyword}${extra}`;
}

/** The schema violations of `report`, one line each (`/cells/3/status: must be equal to constant`); empty when valid. */
export function validateReport(report: unknown): string[] {
  const validate = validator();
  if (validate(report)) return [];
  return (validate.errors ?? []).map(describe);
}
