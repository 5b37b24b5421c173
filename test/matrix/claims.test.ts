/**
 * The claims registry's promise: a cell holds exactly its planned claims, whatever failed. Each prerequisite's failure
 * is injected through the cell's providers (the rest of the cell runs for real: reference converter, reader, bundled
 * engine, llama.cpp in its child process, onnxruntime oracle), with every suite planned, and every claim that needs the
 * failed prerequisite must fail with that prerequisite's verdict while the others are judged as usual.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { VerdictCode } from '../../src/contracts/verdicts.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { parseTarget } from '../../src/converters/targets.js';
import { claimKey, suiteEntry, type Need } from '../../src/matrix/claims.js';
import type { CellProviders } from '../../src/matrix/context.js';
import { ALL_SUITES, planClaims, runCell } from '../../src/matrix/run.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-claims-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const target = parseTarget('gguf/f32'); // every suite applies to it
const garbage = join(workDir, 'garbage.gguf');
writeFileSync(garbage, Buffer.from('this is not a model file at all'));

const CASES: { name: string; need: Need; code: VerdictCode; providers: Partial<CellProviders> }[] = [
  {
    name: 'converter failed',
    need: 'artifact',
    code: 'F-RUNTIME-001',
    providers: {
      convert: async () => ({
        status: 'failed',
        exitCode: 3,
        signal: undefined,
        timedOut: false,
        durationMs: 1,
        log: 'boom',
        reason: 'exited with code 3',
      }),
    },
  },
  {
    name: 'file unreadable',
    need: 'readable file',
    code: 'F-FILE-001',
    providers: { convert: async () => ({ status: 'ok', artifact: garbage, format: 'gguf', durationMs: 1, log: '' }) },
  },
  {
    name: 'bundled engine failed',
    need: 'bundled engine',
    code: 'F-RUNTIME-002',
    providers: { engine: async () => ({ status: 'failed', engine: 'bundled', message: 'injected failure', durationMs: 1 }) },
  },
  {
    name: 'llama.cpp failed',
    need: 'llama.cpp',
    code: 'F-RUNTIME-002',
    providers: { llamaCpp: async () => ({ status: 'failed', engine: 'llama.cpp', message: 'injected abort', durationMs: 1 }) },
  },
  { name: 'oracle missing', need: 'oracle', code: 'F-RUNTIME-003', providers: { oracle: async () => [] } },
];

describe('runCell holds exactly the planned claims when a prerequisite fails', () => {
  const planned = planClaims(target, DEFAULT_PROMPTS, ALL_SUITES);
  it('plans every suite for gguf/f32, prompt-level ones once per prompt', () => {
    expect(new Set(planned.map((c) => c.suite))).toEqual(new Set(ALL_SUITES));
    expect(planned.filter((c) => c.suite === 'logits')).toHaveLength(DEFAULT_PROMPTS.length);
  });

  it.each(CASES)(
    '$name → every claim that needs it fails with $code, the others are judged',
    async ({ need, code, providers }) => {
      const r = await runCell(
        { converter: 'reference', model: 'llama-tiny', target, engine: 'bundled' },
        { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: 8, converterTimeoutMs: 60_000, suites: ALL_SUITES, providers },
      );
      expect(r.status).toBe('done');
      expect(r.checks.map(claimKey)).toEqual(planned.map(claimKey));
      // 'artifact' and 'readable file' are needed by everything; the file suite itself reports an unreadable file.
      const needs = (suite: (typeof planned)[number]['suite']) =>
        need === 'artifact' || need === 'readable file' || suiteEntry(suite).needs.includes(need);
      for (const check of r.checks) {
        const codes = check.verdicts.filter((v) => v.status === 'fail').map((v) => v.code);
        if (needs(check.suite)) {
          expect(check.status, `${check.suite} ${check.prompt ?? ''}`).toBe('fail');
          expect(codes, `${check.suite} ${check.prompt ?? ''}`).toContain(code);
        } else {
          expect(check.status, `${check.suite} ${check.prompt ?? ''}: ${codes.join(', ')}`).not.toBe('fail');
        }
      }
    },
    120_000,
  );
});
