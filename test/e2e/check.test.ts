import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS, TRAINED_MODELS } from '../../src/config.js';
import { parseTarget } from '../../src/converters/targets.js';
import { planClaims } from '../../src/matrix/run.js';
import { sortCells } from '../../src/report/merge.js';
import type { ParityReport } from '../../src/report/parity.js';
import { validateReport } from '../../src/report/schema.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';

const BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;

async function tmgt(args: string[]) {
  const reportDir = mkdtempSync(join(tmpdir(), 'tmgt-e2e-'));
  const r = await execa(process.execPath, [BIN, ...args, '--report-dir', reportDir], { reject: false, stdin: 'ignore' });
  const lines = r.stdout.trim().split('\n');
  return { ...r, lines, reportDir };
}

/** A report without what differs between two runs of the same claims: durations and artifact paths. */
function stripTimings(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v: unknown) => (key === 'durationMs' || key === 'timingsMs' || key === 'artifact' ? undefined : v)),
  );
}

// llama-tiny: vocab 384 × hidden 96.
const N = 384 * 96;

describe('tmgt check (end to end, real subprocesses)', () => {
  // The whole default matrix (every model × target) runs in-process in test/converters/targets.test.ts;
  // here the CLI end to end on one lossless and one quantized target of every model.
  const E2E_TARGETS = ['gguf/f32', 'gguf/q8_0'];
  it('passes the reference converter on every tiny model and writes parity.json', async () => {
    const r = await tmgt(['check', '--targets', E2E_TARGETS.join(',')]);
    expect(r.stderr).not.toContain('internal error');
    const last = r.lines.at(-1) ?? '';
    const m = /^parity: (\d+)\/(\d+) checks passing( \(\d+ with warnings\))?$/.exec(last);
    expect(m, `${r.stdout}\n${r.stderr}`).not.toBeNull();
    expect(m?.[1]).toBe(m?.[2]);
    expect(Number(m?.[2])).toBeGreaterThanOrEqual(6);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(readFileSync(join(r.reportDir, 'parity.json'), 'utf8')) as ParityReport;
    expect(report.schemaVersion).toBe(2);
    // Cells in the canonical order (converter, model, target index) that sharded runs merge back into.
    const expected = sortCells(
      DEFAULT_MATRIX.models.flatMap((model) => E2E_TARGETS.map((target) => ({ converter: 'reference', model, target, engine: 'bundled' }))),
    );
    expect(report.cells.map((c) => `${c.model} ${c.target}`)).toEqual(expected.map((c) => `${c.model} ${c.target}`));
    expect(validateReport(report)).toEqual([]);
    for (const f of ['index.html', 'junit.xml']) expect(existsSync(join(r.reportDir, f)), f).toBe(true);
    expect(report.summary).toMatchObject({ checks: Number(m?.[2]), failed: 0 });
    expect(report.summary.passed + report.summary.warned).toBe(Number(m?.[2]));
    // Warnings (a target's own loss beyond the absolute bounds) only where those bounds were not calibrated.
    const warnedModels = new Set(report.cells.filter((c) => c.checks.some((k) => k.status === 'warn')).map((c) => c.model));
    for (const model of TRAINED_MODELS) expect(warnedModels.has(model), model).toBe(false);
    for (const cell of report.cells) {
      const claims = planClaims(parseTarget(cell.target), DEFAULT_PROMPTS).map((c) => ({ suite: c.suite, prompt: c.prompt?.text }));
      const got = cell.checks.map((c) => `${c.suite} ${c.prompt ?? ''}`).filter((c) => !c.startsWith('tokens drift'));
      expect(new Set(got)).toEqual(new Set(claims.map((c) => `${c.suite} ${c.prompt ?? ''}`)));
    }
  });

  it('kills mutant:lm-head-int8-as-f32 with F-LAYOUT-CONTRACT-001 naming the lm_head tensor', async () => {
    const r = await tmgt(['check', '--models', 'llama-tiny', '--targets', 'gguf/q8_0', '--converter', 'mutant:lm-head-int8-as-f32']);
    expect(r.exitCode).toBe(1);
    expect(r.lines).toContain(`error: F-LAYOUT-CONTRACT-001 Tensor 'output.weight': Shape mismatch: got ${N / 4 + 1}, expected ${N}`);
    expect(r.lines.at(-1)).toMatch(/^parity: \d+\/\d+ checks passing$/);
  });

  it('kills mutant:lm-head-zeros with F-DATA-QUALITY-001 naming the lm_head tensor', async () => {
    const r = await tmgt(['check', '--models', 'llama-tiny', '--targets', 'gguf/q8_0', '--converter', 'mutant:lm-head-zeros']);
    expect(r.exitCode).toBe(1);
    expect(r.lines.some((l) => l.startsWith("error: F-DATA-QUALITY-001 Tensor 'output.weight': 100.0% zeros"))).toBe(true);
  });

  it('brings your own checkpoint: a local HF directory registered under another name', async () => {
    const built = await buildModel(findModelSpec('llama-tiny'));
    const mine = mkdtempSync(join(tmpdir(), 'tmgt-byo-'));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])
      copyFileSync(join(built, f), join(mine, f));
    const r = await tmgt(['check', '--models', `my-llama=${mine}`, '--targets', 'gguf/f32']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(r.reportDir, 'parity.json'), 'utf8')) as ParityReport;
    expect(report.cells.map((c) => c.model)).toEqual(['my-llama']);
    expect(report.summary.failed).toBe(0);
    const missing = await tmgt(['check', '--models', `nope=${join(mine, 'absent')}`]);
    expect(missing.exitCode).toBe(2);
  });

  it('--shard i/n then tmgt report merge gives the unsharded report (timings aside)', async () => {
    const args = [
      'check',
      '--models',
      'llama-tiny,gpt2-tiny',
      '--targets',
      'gguf/f32,gguf/q8_0,apr/int8',
      '--suites',
      'file,metadata,layout,fidelity,logits',
    ];
    const whole = await tmgt(args);
    const shards = [
      await tmgt([...args, '--shard', '1/3']),
      await tmgt([...args, '--shard', '2/3']),
      await tmgt([...args, '--shard', '3/3']),
    ];
    for (const r of [whole, ...shards]) expect(r.exitCode, r.stderr).toBe(0);
    const out = mkdtempSync(join(tmpdir(), 'tmgt-merged-'));
    const merged = await execa(process.execPath, [BIN, 'report', 'merge', ...shards.map((r) => r.reportDir), '-o', out], {
      reject: false,
      stdin: 'ignore',
    });
    expect(merged.exitCode, merged.stderr).toBe(0);
    const read = (dir: string) => stripTimings(JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8')));
    expect(shards.map((r) => (JSON.parse(readFileSync(join(r.reportDir, 'parity.json'), 'utf8')) as ParityReport).cells.length)).toEqual([
      2, 2, 2,
    ]);
    expect(read(out)).toEqual(read(whole.reportDir));
    const html = (dir: string) => readFileSync(join(dir, 'index.html'), 'utf8').replace(/"durationMs":[0-9.e+-]+/g, '');
    expect(html(out).length).toBeGreaterThan(1000);
    expect(readFileSync(join(out, 'junit.xml'), 'utf8').replace(/time="[^"]*"/g, '')).toEqual(
      readFileSync(join(whole.reportDir, 'junit.xml'), 'utf8').replace(/time="[^"]*"/g, ''),
    );
  });

  it('exits 2 with a one-line explanation for a bad flag', async () => {
    for (const args of [
      ['check', '--targets', 'gguf/nope'],
      ['check', '--models', 'nope'],
      ['check', '--frobnicate'],
      ['check', '--converter', 'mutant:nope'],
    ]) {
      const r = await tmgt(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^tmgt: /);
    }
  });
});
