// The parity claims over the default matrix, as a vitest suite: `npx vitest run suites/` runs the same claims
// `tmgt check` runs — both plan them from the claims registry (src/matrix/claims.ts) and run them through runCell —
// so users keep vitest's filters, watch mode and reporters. One describe per cell, one test per planned claim; a
// claim holds under the same rule as the CLI's (`holds`: pass or warn).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS } from '../src/config.js';
import { parseTarget } from '../src/converters/targets.js';
import { claimKey } from '../src/matrix/claims.js';
import { ALL_SUITES, planClaims, runCell, type CellResult } from '../src/matrix/run.js';
import { holds } from '../src/report/parity.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-suites-'));

for (const model of DEFAULT_MATRIX.models) {
  for (const targetId of DEFAULT_MATRIX.targets) {
    describe(`${DEFAULT_MATRIX.converter} × ${model} × ${targetId} × ${DEFAULT_MATRIX.engine}`, () => {
      let result: CellResult;
      beforeAll(async () => {
        result = await runCell(
          { converter: DEFAULT_MATRIX.converter, model, target: parseTarget(targetId), engine: DEFAULT_MATRIX.engine },
          {
            workDir,
            prompts: DEFAULT_PROMPTS,
            maxNewTokens: DEFAULT_MATRIX.maxNewTokens,
            converterTimeoutMs: DEFAULT_MATRIX.converterTimeoutMs,
            suites: ALL_SUITES,
          },
        );
      });
      for (const claim of planClaims(parseTarget(targetId), DEFAULT_PROMPTS)) {
        it(claim.prompt === undefined ? claim.suite : `${claim.suite}: ${JSON.stringify(claim.prompt.text)}`, (ctx) => {
          const check = result.checks.find((c) => claimKey(c) === claimKey(claim));
          expect(check, 'claim was not evaluated').toBeDefined();
          Object.assign(ctx.task.meta, { verdicts: check?.verdicts });
          const failing = check?.verdicts.filter((v) => v.status === 'fail') ?? [];
          expect(check !== undefined && holds(check), failing.map((v) => `${v.code} ${v.tensor ?? ''}: ${v.message}`).join('\n')).toBe(
            true,
          );
        });
      }
    });
  }
}
