// The parity claims over the default matrix, as a vitest suite: `npx vitest run suites/` runs the same
// claims `tmgt check` runs (both go through runCell and the check functions in src/checks/), so users
// keep vitest's filters, watch mode and reporters. One describe per cell, one test per claim.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS } from '../src/config.js';
import { parseTarget } from '../src/converters/targets.js';
import { ALL_SUITES, claimsFor, runCell, type CellResult } from '../src/matrix/run.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-suites-'));

for (const model of DEFAULT_MATRIX.models) {
  for (const targetId of DEFAULT_MATRIX.targets) {
    describe(`${DEFAULT_MATRIX.converter} × ${model} × ${targetId} × ${DEFAULT_MATRIX.engine}`, () => {
      let result: CellResult;
      beforeAll(async () => {
        result = await runCell(
          { converter: DEFAULT_MATRIX.converter, model, target: parseTarget(targetId), engine: DEFAULT_MATRIX.engine },
          { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: DEFAULT_MATRIX.maxNewTokens, converterTimeoutMs: DEFAULT_MATRIX.converterTimeoutMs, suites: ALL_SUITES },
        );
      });
      const claims = claimsFor(parseTarget(targetId), DEFAULT_PROMPTS);
      for (const claim of claims) {
        it(claim.prompt === undefined ? claim.suite : `${claim.suite}: ${JSON.stringify(claim.prompt)}`, (ctx) => {
          const check = result.checks.find((c) => c.suite === claim.suite && c.prompt === claim.prompt);
          expect(check, 'claim was not evaluated').toBeDefined();
          Object.assign(ctx.task.meta, { verdicts: check?.verdicts });
          expect(check?.verdicts.map((v) => `${v.code} ${v.tensor ?? ''}: ${v.message}`)).toEqual([]);
        });
      }
    });
  }
}
