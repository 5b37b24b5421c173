import { statusOf } from './codes.js';
import type { ModelFile } from '../formats/types.js';
import type { CheckResult, Verdict } from './codes.js';

/** L0: what the reader found wrong with the file itself. */
export function checkFile(file: ModelFile): CheckResult {
  const verdicts: Verdict[] = file.issues.map((i) => {
    const v: Verdict = { code: i.code, status: 'fail', message: i.message, evidence: { ...(i.evidence ?? {}), fatal: i.fatal } };
    if (i.tensor !== undefined) v.tensor = i.tensor;
    return v;
  });
  return { suite: 'file', status: statusOf(verdicts), verdicts };
}
