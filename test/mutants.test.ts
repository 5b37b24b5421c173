import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CODES, type VerdictCode } from '../src/checks/codes.js';
import { checkFile } from '../src/checks/file.js';
import { converterFailed } from '../src/checks/runtime.js';
import { DEFAULT_PROMPTS } from '../src/config.js';
import { runConverter } from '../src/converters/adapter.js';
import { MUTANTS } from '../src/converters/mutants.js';
import { parseTarget } from '../src/converters/targets.js';
import { BufferByteSource } from '../src/formats/byte-source.js';
import { aprTensorFromF32, encodeApr } from '../src/formats/apr/writer.js';
import { readGguf } from '../src/formats/gguf/reader.js';
import { readModelFile } from '../src/formats/read-model.js';
import { ALL_SUITES, runCell, type CellResult } from '../src/matrix/run.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-mutants-'));
const opts = { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: 32, converterTimeoutMs: 120_000, suites: ALL_SUITES };
const produced = new Set<VerdictCode>();

function codesOf(r: CellResult): Set<VerdictCode> {
  const codes = new Set(r.checks.flatMap((c) => c.verdicts.map((v) => v.code)));
  for (const c of codes) produced.add(c);
  return codes;
}

const cell = (converter: string, target = 'gguf/q8_0') => ({ converter, model: 'llama-tiny', target: parseTarget(target), engine: 'bundled' as const });

describe('mutant kill suite (llama-tiny)', () => {
  for (const target of ['gguf/f32', 'gguf/q8_0']) {
    it(`reference converter at ${target}: every check passes`, async () => {
      const r = await runCell(cell('reference', target), opts);
      const failing = r.checks.flatMap((c) => c.verdicts);
      expect(failing, JSON.stringify(failing, null, 1)).toEqual([]);
      expect(r.checks.filter((c) => c.suite === 'logits')).toHaveLength(DEFAULT_PROMPTS.length);
    });
  }

  for (const m of MUTANTS) {
    it(`kills ${m.id} with ${m.expected.join(', ')}`, async () => {
      const r = await runCell(cell(m.id), opts);
      const codes = codesOf(r);
      for (const code of m.expected) expect([...codes], `${m.id} should raise ${code}`).toContain(code);
      expect(r.checks.some((c) => c.status === 'fail')).toBe(true);
    });
  }

  it('F-RUNTIME-001: a converter that exits non-zero becomes a verdict, not a crash', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'tmgt-empty-'));
    const r = await runConverter({ converter: 'reference', model: 'empty', sourceDir: empty, target: parseTarget('gguf/f32'), outDir: workDir, timeoutMs: 60_000 });
    expect(r.status).toBe('failed');
    if (r.status !== 'failed') return;
    expect(r.exitCode).toBe(2);
    const check = converterFailed('reference', r);
    check.verdicts.forEach((v) => produced.add(v.code));
    expect(check.verdicts[0]?.code).toBe('F-RUNTIME-001');
  });

  it('F-FILE-001/002: malformed reference output gives file verdicts', async () => {
    const r = await runConverter({ converter: 'reference', model: 'llama-tiny', sourceDir: await modelDir(), target: parseTarget('gguf/q8_0'), outDir: workDir, timeoutMs: 60_000 });
    if (r.status !== 'ok') throw new Error(r.status === 'failed' ? r.log : r.reason);
    const bytes = new Uint8Array(readFileSync(r.artifact));
    const truncated = bytes.slice(0, Math.floor(bytes.length * 0.8));
    const badMagic = bytes.slice();
    badMagic[0] = 0x58;
    writeFileSync(join(workDir, 'truncated.gguf'), truncated);
    for (const [b, code] of [[truncated, 'F-FILE-002'], [badMagic, 'F-FILE-001']] as const) {
      const check = checkFile(readGguf(new BufferByteSource(b)));
      const codes = check.verdicts.map((v) => v.code);
      codes.forEach((c) => produced.add(c));
      expect(codes).toContain(code);
    }
  });

  it('F-FILE-004: an APR file whose footer CRC32 does not match its bytes', () => {
    const values = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const bytes = encodeApr({ tensors: [aprTensorFromF32('w', [8, 8], values, 'F32')] });
    const at = bytes.length - 20; // a data byte: the footer no longer matches
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    const codes = checkFile(readModelFile(new BufferByteSource(bytes))).verdicts.map((v) => v.code);
    codes.forEach((c) => produced.add(c));
    expect(codes).toContain('F-FILE-004');
  });

  afterAll(() => {
    // Every code in the catalogue must be produced by at least one test in this file.
    const missing = Object.keys(CODES).filter((c) => !produced.has(c as VerdictCode));
    expect(missing, `catalogue codes no test produced: ${missing.join(', ')}`).toEqual([]);
  });
});

async function modelDir(): Promise<string> {
  const { buildModel } = await import('../src/zoo/build.js');
  const { findModelSpec } = await import('../src/zoo/specs.js');
  return buildModel(findModelSpec('llama-tiny'));
}
