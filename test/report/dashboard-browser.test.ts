/**
 * The dashboard in a real browser: Debian's chromium (installed by `make browser`) driven by playwright-core.
 * A dashboard built from real check output opens from disk with no console error and no network request,
 * shows the report's numbers, drills down into a cell; a dashboard built from a GGUF whose tensor name and
 * metadata hold HTML/script payloads runs none of them.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CellResult, ParityReport, TensorRow } from '../../src/contracts/results.js';
import { BufferByteSource } from '../../src/formats/byte-source.js';
import { readGguf } from '../../src/formats/gguf/reader.js';
import { encodeGguf } from '../../src/formats/gguf/writer.js';
import { renderHtml } from '../../src/report/html.js';
import { renderJunit } from '../../src/report/junit.js';
import { summarizeCells } from '../../src/report/merge.js';
import { validateReport } from '../../src/report/schema.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const REPORTS = join(import.meta.dirname, '..', '..', 'reports');
const fixture = (name: string): ParityReport =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8')) as ParityReport;

/** Everything a page did that a self-contained, script-free-of-surprises dashboard must not. */
interface Watch {
  consoleErrors: string[];
  pageErrors: string[];
  requests: string[];
  dialogs: string[];
}

let context: BrowserContext;
let userDataDir: string;
let work: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make browser\` (apt-get install -y chromium)`);
  userDataDir = mkdtempSync(join(tmpdir(), 'tmgt-chromium-'));
  work = mkdtempSync(join(tmpdir(), 'tmgt-dashboard-'));
  // A fresh profile per run: no extension, cache or service worker from a previous run can make a request.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: { width: 1280, height: 900 },
  });
});

afterAll(async () => {
  await context?.close();
  for (const d of [userDataDir, work]) if (d) rmSync(d, { recursive: true, force: true });
});

async function open(html: string, name: string): Promise<{ page: Page; watch: Watch; url: string }> {
  const file = join(work, name);
  writeFileSync(file, html);
  const url = pathToFileURL(file).href;
  const watch: Watch = { consoleErrors: [], pageErrors: [], requests: [], dialogs: [] };
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') watch.consoleErrors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => watch.pageErrors.push(e.message));
  page.on('request', (r) => {
    if (r.url() !== url) watch.requests.push(r.url());
  });
  page.on('dialog', (d) => {
    watch.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, watch, url };
}

const text = async (page: Page, selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? '').trim();

describe('dashboard in chromium', () => {
  it('opens from disk, shows the report, drills down; no console error, no request', async () => {
    const report = fixture('report.json');
    const previous = fixture('previous.json');
    expect(validateReport(report)).toEqual([]);
    const { page, watch } = await open(renderHtml(report, { previous }), 'index.html');

    // The totals and every converter's N/M are the report's.
    expect(await text(page, '#summary-passed')).toBe(String(report.summary.passed));
    expect(await text(page, '#summary-checks')).toBe(String(report.summary.checks));
    expect(await text(page, '#summary-failed')).toBe(String(report.summary.failed));
    for (const [name, s] of Object.entries(report.converters)) {
      const card = page.locator(`.card[data-converter="${name}"]`);
      expect(await card.locator('.passed').textContent()).toBe(String(s.passed));
      expect(await card.locator('.checks').textContent()).toBe(String(s.checks));
    }
    expect(await text(page, '#summary-delta')).toContain(`${previous.summary.passed}/${previous.summary.checks}`);
    // One heatmap square per cell; a failing cell is red and labelled with its passing count.
    expect(await page.locator('table.heat a.sq').count()).toBe(report.cells.length);
    expect(await page.locator('#newly-failing li').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(REPORTS, 'dashboard.png') });

    // Drill down into the first failing cell that has a tensor table.
    const target = report.cells.find(
      (c): c is Extract<CellResult, { status: 'done' }> => c.status === 'done' && (c.tensors?.some((t) => t.codes.length > 0) ?? false),
    );
    if (!target?.tensors) throw new Error('the fixture has no failing cell with a tensor table');
    const square = page.locator(`table.heat[data-converter="${target.converter}"] a.sq[title^="${target.model} × ${target.target}:"]`);
    expect(await square.count()).toBe(1);
    expect(await square.getAttribute('class')).toBe('sq fail');
    expect(await square.locator('.l').textContent()).toBe(
      `${target.checks.filter((c) => c.status !== 'fail').length}/${target.checks.length}`,
    );
    await square.click();
    const details = page.locator('details.cell[open]');
    await expect.poll(() => details.count()).toBe(1);
    const rows = details.locator('table.tensors tbody tr');
    await expect.poll(() => rows.count()).toBe(target.tensors.length);
    await details.scrollIntoViewIfNeeded();
    await details.screenshot({ path: join(REPORTS, 'dashboard-drilldown.png') });
    // Failing tensors sort first; the filter narrows the table to what matches.
    const failing = target.tensors.filter((t: TensorRow) => t.codes.length > 0);
    expect(await rows.first().getAttribute('class')).toBe('bad');
    expect(await rows.locator('td.name').first().textContent()).toBe([...failing].sort((a, b) => b.codes.length - a.codes.length)[0]?.name);
    const q = (failing[0]?.role ?? failing[0]?.name ?? '').replace(/^blk\.\d+\./, '');
    await details.locator('input.filter').fill(q);
    const expected = target.tensors.filter((t) =>
      [t.name, t.role ?? '', t.dtype, t.codes.join(' ')].join(' ').toLowerCase().includes(q.toLowerCase()),
    );
    await expect.poll(() => rows.count()).toBe(expected.length);
    await details.locator('input.filter').fill('');
    await details.locator('button.sort', { hasText: 'Bytes' }).click();
    const bytes = await rows.locator('td.bytes').allTextContents();
    const sorted = [...target.tensors]
      .map((t) => t.bytes)
      .sort((a, b) => b - a)
      .map((b) => b.toLocaleString('en-US'));
    expect(bytes).toEqual(sorted);
    // The KL chart and the greedy continuation beside the oracle's are there when the cell has them.
    const withText = target.checks.find((c) => c.detail?.oracleText !== undefined);
    if (withText?.detail?.oracleText !== undefined) expect(await details.locator('.texts').count()).toBeGreaterThan(0);
    if (target.checks.some((c) => (c.detail?.klPerPosition?.length ?? 0) > 1))
      expect(await details.locator('svg.kl').count()).toBeGreaterThan(0);

    // The JUnit file of the same report is well-formed XML with one testcase per check (plus skipped cells).
    // Page-side code as a string: the test's tsconfig has no DOM lib (and should not, for src/).
    const junit = (await page.evaluate(`(() => {
      const doc = new DOMParser().parseFromString(${JSON.stringify(renderJunit(report))}, 'application/xml');
      return { errors: doc.getElementsByTagName('parsererror').length, cases: doc.getElementsByTagName('testcase').length,
        failures: doc.getElementsByTagName('failure').length };
    })()`)) as { errors: number; cases: number; failures: number }; // the object literal returned above
    const skipped = report.cells.filter((c) => c.status === 'skipped').length;
    expect(junit).toEqual({ errors: 0, cases: report.summary.checks + skipped, failures: report.summary.failed });

    expect(watch).toEqual({ consoleErrors: [], pageErrors: [], requests: [], dialogs: [] });
    await page.close();
  });

  it('a GGUF whose tensor name and metadata hold script payloads runs none of them', async () => {
    const img = '<img src=x onerror=alert(1)>';
    const closer = '</script><script>window.__pwned = 1; alert(2)</script>';
    const attr = '"><svg onload=alert(3)>';
    const names = [img, closer, `blk.0.${attr}.weight`, 'token_embd.weight'];
    const bytes = encodeGguf({
      kvs: [
        { key: 'general.architecture', type: 'string', value: 'llama' },
        { key: 'general.name', type: 'string', value: img },
        { key: 'general.description', type: 'string', value: closer },
      ],
      tensors: names.map((name, i) => ({ name, shape: [2, 4], dtype: 'F32', data: new Uint8Array(new Float32Array(8).fill(i).buffer) })),
    });
    const gguf = readGguf(new BufferByteSource(bytes));
    expect(gguf.issues).toEqual([]);
    const modelName = String(gguf.metadata.get('general.name'));
    const description = String(gguf.metadata.get('general.description'));
    expect(modelName).toBe(img);
    expect(gguf.tensors.map((t) => t.name)).toEqual(names);

    const tensors: TensorRow[] = gguf.tensors.map((t) => ({
      name: t.name,
      role: t.name,
      shape: t.shape,
      dtype: t.dtype,
      bytes: t.byteLength,
      codes: ['F-LAYOUT-CONTRACT-006'],
    }));
    const cell: CellResult = {
      converter: `mutant:${attr}`,
      model: modelName,
      target: 'gguf/f32',
      engine: 'bundled',
      durationMs: 1,
      status: 'done',
      tensors,
      checks: [
        {
          suite: 'layout',
          status: 'fail',
          verdicts: gguf.tensors.map((t) => ({
            code: 'F-LAYOUT-CONTRACT-006' as const,
            status: 'fail' as const,
            tensor: t.name,
            message: `unexpected tensor ${t.name} in ${description}`,
            evidence: { expected: description, got: t.name },
          })),
        },
        {
          suite: 'tokens',
          prompt: img,
          status: 'fail',
          verdicts: [{ code: 'F-TOKENS-002', status: 'fail', message: closer, evidence: {} }],
          detail: { oracleText: img, candidateText: closer, firstDivergingLayer: attr, klPerPosition: [0.1, 0.2, 0.05] },
        },
      ],
    };
    const report: ParityReport = {
      schemaVersion: 2,
      tool: { name: 'tiny-model-ground-truth', version: '0.1.0' },
      ...summarizeCells([cell]),
      cells: [cell],
      mutants: [
        { mutant: `mutant:${img}`, model: modelName, target: 'gguf/f32', expected: closer, got: ['F-LAYOUT-CONTRACT-006'], killed: false },
      ],
    };
    expect(validateReport(report)).toEqual([]);
    const html = renderHtml(report, { previous: report });
    expect(html).not.toContain(img);
    expect(html).not.toContain('</script><script>window');

    const { page, watch } = await open(html, 'xss.html');
    await page.locator('table.heat a.sq').first().click();
    const details = page.locator('details.cell[open]');
    await expect.poll(() => details.locator('table.tensors tbody tr').count()).toBe(names.length);
    await page.waitForTimeout(200);
    const state = (await page.evaluate(`({
      pwned: window.__pwned ?? null,
      imgs: document.querySelectorAll('img').length,
      svgOnload: document.querySelectorAll('svg[onload]').length,
      scripts: document.querySelectorAll('script').length,
    })`)) as Record<string, number | null>; // the object literal above; __pwned is set only if a payload ran
    expect(state).toEqual({ pwned: null, imgs: 0, svgOnload: 0, scripts: 2 });
    // The payloads are on the page as text: escaped, not dropped.
    const cellsText = await details.locator('table.tensors td.name').allTextContents();
    expect(cellsText.sort()).toEqual([...names].sort());
    expect(await page.locator('.heat th.row').first().textContent()).toBe(img);
    expect(await details.locator('.texts .t').allTextContents()).toEqual([img, closer]);
    expect(watch).toEqual({ consoleErrors: [], pageErrors: [], requests: [], dialogs: [] });
    await page.close();
  });
});

mkdirSync(REPORTS, { recursive: true });
