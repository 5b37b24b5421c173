import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CellResult, ParityReport } from '../../src/contracts/results.js';
import { escapeData, escapeProperty, githubAnnotations } from '../../src/report/annotations.js';
import { renderHtml, scriptJson } from '../../src/report/html.js';
import { renderJunit } from '../../src/report/junit.js';
import { summarizeCells } from '../../src/report/merge.js';
import { expectedGot, failureGroups, mdCode, renderTicket, roleKind } from '../../src/report/ticket.js';

const fixture = (name: string): ParityReport =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')) as ParityReport;
const failingVerdicts = (r: ParityReport) => r.cells.flatMap((c) => c.checks.flatMap((k) => k.verdicts.filter((v) => v.status === 'fail')));

describe('JUnit', () => {
  it('one testcase per check with classname converter.model.target, failures carry the verdict lines, skipped cells skipped', () => {
    const r = fixture('report.json');
    const xml = renderJunit(r);
    const cases = [...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"/g)];
    const skipped = r.cells.filter((c) => c.status === 'skipped');
    expect(skipped.length).toBeGreaterThan(0);
    expect(cases.length).toBe(r.summary.checks + skipped.length);
    expect((xml.match(/<failure /g) ?? []).length).toBe(r.summary.failed);
    expect((xml.match(/<skipped /g) ?? []).length).toBe(skipped.length);
    const classnames = new Set(cases.map((m) => m[1]));
    for (const c of r.cells) expect(classnames.has(`${c.converter}.${c.model}.${c.target}`)).toBe(true);
    expect(xml).toContain('error: F-LAYOUT-CONTRACT-001 Tensor &#39;output.weight&#39;: Shape mismatch: got 9217, expected 36864');
    expect(xml).toMatch(new RegExp(`<testsuites name="tiny-model-ground-truth" tests="${cases.length}" failures="${r.summary.failed}"\\s`));
  });

  it('escapes markup and drops characters XML cannot carry', () => {
    const cell: CellResult = {
      converter: 'c<"&>',
      model: 'm',
      target: 'gguf/f32',
      engine: 'bundled',
      durationMs: 10,
      status: 'done',
      checks: [
        {
          suite: 'layout',
          status: 'fail',
          verdicts: [{ code: 'F-LAYOUT-CONTRACT-006', status: 'fail', tensor: 'a]]>\u0001<b>', message: 'x & y', evidence: {} }],
        },
      ],
    };
    const xml = renderJunit({
      schemaVersion: 2,
      tool: { name: 'tiny-model-ground-truth', version: '0' },
      ...summarizeCells([cell]),
      cells: [cell],
    });
    expect(xml).not.toContain('<b>');
    expect(xml).not.toContain('\u0001');
    expect(xml).toContain('c&lt;&quot;&amp;&gt;.m.gguf/f32');
    expect(xml).toContain('x &amp; y');
  });
});

describe('GitHub annotations', () => {
  it('one ::error per failing verdict (up to the limit), titled by code, then a notice with the totals', () => {
    const r = fixture('report.json');
    const lines = githubAnnotations(r, { maxPerKind: 1000 });
    expect(lines.filter((l) => l.startsWith('::error ')).length).toBe(failingVerdicts(r).length);
    expect(lines).toContain(
      '::error title=F-LAYOUT-CONTRACT-001::mutant:lm-head-int8-as-f32 llama-tiny gguf/q8_0 layout: ' +
        "Tensor 'output.weight': Shape mismatch: got 9217, expected 36864",
    );
    expect(lines.at(-1)).toBe(`::notice title=parity::${r.summary.passed}/${r.summary.checks} checks passing`);
    const capped = githubAnnotations(r);
    expect(capped.filter((l) => l.startsWith('::error ')).length).toBe(10);
    expect(capped.at(-1)).toMatch(/more errors/);
  });

  it('escapes per the workflow-command rules, so a message cannot start a new command', () => {
    expect(escapeData('50%\r\n::error::x')).toBe('50%25%0D%0A::error::x');
    expect(escapeProperty('a:b,c%\n')).toBe('a%3Ab%2Cc%25%0A');
    const cell: CellResult = {
      converter: 'c',
      model: 'm',
      target: 'gguf/f32',
      engine: 'bundled',
      durationMs: 1,
      status: 'done',
      checks: [
        {
          suite: 'layout',
          status: 'fail',
          verdicts: [{ code: 'F-LAYOUT-CONTRACT-006', status: 'fail', tensor: 'x\n::error title=FAKE::pwned', message: 'm', evidence: {} }],
        },
      ],
    };
    const lines = githubAnnotations({
      schemaVersion: 2,
      tool: { name: 'tiny-model-ground-truth', version: '0' },
      ...summarizeCells([cell]),
      cells: [cell],
    });
    for (const l of lines) expect(l).not.toContain('\n');
    expect(lines[0]).toContain('%0A::error title=FAKE::pwned');
  });
});

describe('TICKET.md', () => {
  it('groups by code and tensor role, with the element counts of F-LAYOUT-CONTRACT-001 and the reproduction command', () => {
    const r = fixture('report.json');
    const md = renderTicket(r);
    expect(md).toContain(`tiny-model-ground-truth parity checker (${r.summary.passed}/${r.summary.checks} passing)`);
    const groups = failureGroups(r);
    const layout = groups.find((g) => g.code === 'F-LAYOUT-CONTRACT-001');
    expect(layout?.role).toBe('output.weight');
    // The GGUF calls it output.weight, the APR lm_head.weight: one role, one group, both targets.
    expect(layout?.rows.map((x) => [x.model, x.target, x.tensor, x.expected, x.got])).toEqual([
      ['llama-tiny', 'gguf/q8_0', 'output.weight', '36,864', '9,217'],
      ['llama-tiny', 'apr/int8', 'lm_head.weight', '36,864', '9,217'],
    ]);
    expect(md).toContain('| Model | Target | Tensor | Expected | Got | Code |');
    expect(md).toContain('| llama-tiny | apr/int8 | `lm_head.weight` | `36,864` | `9,217` | F-LAYOUT-CONTRACT-001 |');
    expect(md).toContain('npx tmgt check --models llama-tiny --targets gguf/q8_0,apr/int8 --converter mutant:lm-head-int8-as-f32');
    expect(renderTicket(r, { command: 'node bin/tmgt.js check' })).toContain('node bin/tmgt.js check --models llama-tiny');
    // The engine failing on the broken lm_head is filed as its consequence, after it.
    const engine = groups.findIndex((g) => g.code === 'F-RUNTIME-002' && g.converter === 'mutant:lm-head-int8-as-f32');
    expect(groups[engine]?.likelyCauseOf).toBe(groups.indexOf(layout as NonNullable<typeof layout>));
    // Every failing verdict is in exactly one group.
    expect(groups.reduce((a, g) => a + g.lines.length, 0)).toBe(failingVerdicts(r).length);
    // The passing converter contributes nothing.
    expect(groups.some((g) => g.converter === 'reference')).toBe(false);
  });

  it('reads expected/got from the evidence as documented', () => {
    const v = (code: 'F-LAYOUT-CONTRACT-001' | 'F-FIDELITY-001' | 'F-LOGITS-003', evidence: Record<string, unknown>) => ({
      code,
      status: 'fail' as const,
      message: '',
      evidence,
    });
    expect(expectedGot(v('F-LAYOUT-CONTRACT-001', { expected: 28311552, got: 7077889 }))).toEqual({
      expected: '28,311,552',
      got: '7,077,889',
    });
    expect(expectedGot(v('F-LAYOUT-CONTRACT-001', { expectedElements: 28311552, gotElements: 7077889 }))).toEqual({
      expected: '28,311,552',
      got: '7,077,889',
    });
    expect(expectedGot(v('F-FIDELITY-001', { sqnrDb: 12.5, boundDb: 40 }))).toEqual({ expected: 'SQNR ≥ 40 dB', got: '12.50 dB' });
    expect(expectedGot(v('F-LOGITS-003', { klMean: 2.1, klMeanBound: 0.003 }))).toEqual({
      expected: 'klMean ≤ 0.003000',
      got: 'klMean 2.100',
    });
    expect(roleKind('blk.12.attn_k.weight')).toBe('blk.*.attn_k.weight');
    expect(roleKind('model.layers.3.mlp.up_proj.weight')).toBe('model.layers.*.mlp.up_proj.weight');
    expect(roleKind('output.weight')).toBe('output.weight');
  });

  it('puts file-controlled text in code spans that nothing inside can close', () => {
    expect(mdCode('<img src=x onerror=alert(1)>')).toBe('`<img src=x onerror=alert(1)>`');
    expect(mdCode('a`b``c')).toBe('```a`b``c```');
    expect(mdCode('`x', true)).toBe('`` `x ``');
    expect(mdCode('a|b\nc', true)).toBe('`a\\|b c`');
  });

  it('a passing report has nothing to file', () => {
    const r = fixture('report.json');
    const cells = r.cells.filter((c) => c.converter === 'reference');
    expect(renderTicket({ ...r, ...summarizeCells(cells), cells })).toContain('Every check passed');
  });
});

describe('HTML', () => {
  it('is deterministic, self-contained and carries its data as escaped JSON', () => {
    const r = fixture('report.json');
    const a = renderHtml(r);
    expect(renderHtml(r)).toBe(a);
    expect(a).not.toMatch(/\s(src|href)="(https?:)?\/\//);
    expect(a).toMatch(
      new RegExp(
        '<meta http-equiv="Content-Security-Policy" content="' +
          'default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; script-src &#39;sha256-',
      ),
    );
    expect(scriptJson({ s: '</script><!-- & \u2028' })).toBe('{"s":"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028"}');
    expect(JSON.parse(scriptJson({ s: '</script>' }))).toEqual({ s: '</script>' });
  });

  it('lists the checks newly failing and newly passing against the previous run', () => {
    const r = fixture('report.json');
    const previous = fixture('previous.json');
    const key = (c: CellResult, k: CellResult['checks'][number]) =>
      JSON.stringify([c.converter, c.model, c.target, c.engine, k.suite, k.prompt]);
    const before = new Map(previous.cells.flatMap((c) => c.checks.map((k) => [key(c, k), k.status] as const)));
    const now = r.cells.flatMap((c) => c.checks.map((k) => [key(c, k), k.status] as const));
    const newlyFailing = now.filter(([k, s]) => s === 'fail' && before.has(k) && before.get(k) !== 'fail').length;
    const newlyPassing = now.filter(([k, s]) => s !== 'fail' && before.get(k) === 'fail').length;
    expect(newlyFailing).toBeGreaterThan(0);
    const html = renderHtml(r, { previous });
    const count = (id: string) =>
      [...(new RegExp(`<ul id="${id}">(.*?)</ul>`, 's').exec(html)?.[1] ?? '').matchAll(/<li data-count="(\d+)">/g)].reduce(
        (a, m) => a + Number(m[1]),
        0,
      );
    expect(count('newly-failing')).toBe(newlyFailing);
    expect(count('newly-passing')).toBe(newlyPassing);
    expect(html).toContain(`${newlyFailing} newly failing, ${newlyPassing} newly passing`);
    // The reverse comparison swaps them.
    const back = renderHtml(previous, { previous: r });
    expect(back).toContain(`${newlyPassing} newly failing, ${newlyFailing} newly passing`);
  });
});
