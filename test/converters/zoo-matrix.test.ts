/**
 * Zero false alarms on the distributions that break quantizers, with a converter nobody here wrote: llama.cpp's own
 * quantizer (`--converter llama.cpp`, libllama through koffi) over the whole tiny zoo — the trained models and their
 * heavy-tailed variants — at all nine GGUF types, and the reference converter over a heavy-tailed variant at every target, every suite. No check may fail; a warning is allowed only with its numbers (the measured value, the bound it
 * exceeded, and what the reference converter measured on the same model and target).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TARGET_IDS, type TargetId } from '../../src/contracts/targets.js';
import { DEFAULT_PROMPTS, HEAVY_TAILED_MODELS, TRAINED_MODELS } from '../../src/config.js';
import { isLlamaCppQuantType } from '../../src/converters/llama-cpp-quantize.js';
import { parseTarget } from '../../src/converters/targets.js';
import { ALL_SUITES, runCell, type CellResult } from '../../src/matrix/run.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-zoo-matrix-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const LLAMA_CPP_TARGETS = TARGET_IDS.filter((t) => t.startsWith('gguf/') && isLlamaCppQuantType(t.slice(5)));
const opts = { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: 32, converterTimeoutMs: 120_000, suites: ALL_SUITES };

function expectNoFailure(r: CellResult): void {
  expect(r.status, r.status === 'skipped' ? r.reason : '').toBe('done');
  const failing = r.checks.flatMap((c) =>
    c.verdicts.filter((v) => v.status === 'fail').map((v) => `${c.suite} ${c.prompt ?? ''}: ${v.code} ${v.message}`),
  );
  expect(failing).toEqual([]);
  for (const v of r.checks.flatMap((c) => c.verdicts)) {
    // A warning carries its numbers: what was measured and the bound it exceeded.
    expect(typeof v.evidence['got'], `${v.code} ${v.message}`).toBe('number');
    expect(v.evidence['bound'], `${v.code} ${v.message}`).toBeDefined();
  }
}

describe('llama.cpp quantizer × the trained zoo and a heavy-tailed model × nine GGUF types: no check fails', () => {
  expect(LLAMA_CPP_TARGETS).toHaveLength(9);
  // The trained zoo and one heavy-tailed member (make check runs the reference over all three heavy-tailed models).
  for (const model of [...TRAINED_MODELS, HEAVY_TAILED_MODELS[0]]) {
    for (const target of LLAMA_CPP_TARGETS) {
      it(`${model} × ${target}`, async () => {
        expectNoFailure(await runCell({ converter: 'llama.cpp', model, target: parseTarget(target), engine: 'bundled' }, opts));
      }, 120_000);
    }
  }
});

// make check runs the reference over every heavy-tailed model; here one of them, at every target, every suite.
describe('reference converter × llama-tiny-heavy × every target: no check fails', () => {
  for (const model of [HEAVY_TAILED_MODELS[0]]) {
    for (const target of TARGET_IDS as readonly TargetId[]) {
      it(`${model} × ${target}`, async () => {
        expectNoFailure(await runCell({ converter: 'reference', model, target: parseTarget(target), engine: 'bundled' }, opts));
      }, 120_000);
    }
  }
});
