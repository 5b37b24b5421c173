import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CODES } from '../../src/contracts/verdicts.js';
import { MUTANTS } from '../../src/converters/mutants.js';
import { renderVerdictsDoc, VERDICTS_DOC } from '../../scripts/render-verdicts.js';

describe('docs/verdicts.md', () => {
  it('is current (else run npx tsx scripts/render-verdicts.ts)', () => {
    expect(readFileSync(VERDICTS_DOC, 'utf8')).toBe(renderVerdictsDoc());
  });

  it('has a section for every code and names every mutant with its reproduction command', () => {
    const page = renderVerdictsDoc();
    for (const code of Object.keys(CODES)) expect(page).toContain(`\n### ${code}\n`);
    for (const m of MUTANTS) {
      expect(page).toContain(`| \`${m.id}\` |`);
      expect(page).toMatch(new RegExp(`npx tmgt check --models \\S+ --targets ${m.target} --converter ${m.id}\\n`));
    }
  });
});
