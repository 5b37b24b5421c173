/**
 * Crash-safe, resumable runs and exit codes, end to end with real processes: `kill -9` of `tmgt check` mid-run, then
 * `--resume`, gives the uninterrupted run's report (timings aside) and redoes only the unfinished cells; ^C stops
 * cleanly with a partial report marked incomplete and exit 2; a run that plans no check is a usage error (exit 2).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;
const ARGS = [
  'check',
  '--models',
  'llama-tiny',
  '--targets',
  'gguf/f32,gguf/q8_0,apr/f16,apr/int8,safetensors/f16',
  '--suites',
  'file,metadata,layout,fidelity,logits',
];

const run = (dir: string, extra: string[] = []) =>
  execa(process.execPath, [BIN, ...ARGS, '--report-dir', dir, ...extra], { reject: false, stdin: 'ignore' });
const report = (dir: string) => JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8')) as { incomplete?: boolean; cells: unknown[] };
const strip = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value, (k, v: unknown) => (k === 'durationMs' || k === 'timingsMs' || k === 'artifact' ? undefined : v)));
const journalCells = (dir: string) =>
  existsSync(join(dir, '.tmgt-run')) ? readdirSync(join(dir, '.tmgt-run')).filter((f) => /^cell-\d+\.json$/.test(f)).length : 0;

async function untilCells(dir: string, n: number): Promise<void> {
  for (let i = 0; i < 600 && journalCells(dir) < n; i++) await new Promise((r) => setTimeout(r, 50));
  expect(journalCells(dir)).toBeGreaterThanOrEqual(n);
}

describe('tmgt check: crash-safe and resumable', () => {
  it('kill -9 mid-run, then --resume: only the unfinished cells run, the report equals an uninterrupted run', async () => {
    const whole = mkdtempSync(join(tmpdir(), 'tmgt-whole-'));
    const first = await run(whole);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(existsSync(join(whole, '.tmgt-run')), 'a completed run leaves no journal').toBe(false);

    const dir = mkdtempSync(join(tmpdir(), 'tmgt-killed-'));
    const child = run(dir);
    await untilCells(dir, 2);
    child.kill('SIGKILL');
    const killed = await child;
    expect(killed.signal).toBe('SIGKILL');
    const kept = journalCells(dir);
    expect(kept).toBeLessThan(5);
    expect(report(dir).incomplete).toBe(true);

    const resumed = await run(dir, ['--resume']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    // Progress names the cells taken from the journal; only the others were run.
    expect(resumed.stderr.match(/finished earlier/g)?.length).toBe(kept);
    expect(strip(report(dir))).toEqual(strip(report(whole)));

    // Cells in parallel (--jobs 2, the default on two cores) and one at a time give the same report.
    const serial = mkdtempSync(join(tmpdir(), 'tmgt-serial-'));
    const one = await run(serial, ['--jobs', '1']);
    expect(one.exitCode, one.stderr).toBe(0);
    expect(strip(report(serial))).toEqual(strip(report(whole)));
    const two = await run(mkdtempSync(join(tmpdir(), 'tmgt-two-')), ['--jobs', '2']);
    expect(two.exitCode, two.stderr).toBe(0);
    expect(two.stderr.match(/checks passing in/g)?.length).toBe(5);
  }, 300_000);

  it('^C stops after the cell in progress: partial report marked incomplete, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tmgt-sigint-'));
    const child = run(dir);
    await untilCells(dir, 1);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/interrupted/);
    const partial = report(dir);
    expect(partial.incomplete).toBe(true);
    expect(partial.cells.length).toBeLessThan(5);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^parity: \d+\/\d+ checks passing.*incomplete run$/);
  }, 240_000);

  it('--resume with nothing to resume, or a run that plans no check, is a usage error (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tmgt-none-'));
    const nothing = await run(dir, ['--resume']);
    expect(nothing.exitCode).toBe(2);
    expect(nothing.stderr).toMatch(/nothing to resume/);
    const none = await execa(
      process.execPath,
      [BIN, 'check', '--models', 'llama-tiny', '--targets', 'apr/int8', '--suites', 'roundtrip', '--report-dir', dir],
      { reject: false, stdin: 'ignore' },
    );
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/nothing to check/);
  }, 60_000);
});
