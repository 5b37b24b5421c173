/**
 * The oracle drift baseline (oracles/manifest.json): every tiny model pinned there is rebuilt and its oracle run
 * fresh (runOracle directly, never the cache); greedy tokens must be identical and the logits fingerprint within
 * NMSE 1e-10. A changed model, config, tokenizer or prompt set is not drift but a stale pin: the test says to re-pin.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { oraclesCommand } from '../src/cli/oracles.js';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROMPTS } from '../src/config.js';
import {
  compareToManifest,
  defaultPinnedModels,
  driftReportLines,
  fingerprintIds,
  fingerprintNmse,
  formatOracleManifest,
  isTinyModel,
  logitsFingerprint,
  modelIdentity,
  pinOracles,
  readOracleManifest,
  REPIN_COMMAND,
  staleness,
  type OracleManifest,
} from '../src/oracle/manifest.js';
import { ORACLE_VERSION } from '../src/oracle/records.js';
import { runOracle, type OracleRecord } from '../src/oracle/run.js';
import { buildModel } from '../src/zoo/build.js';
import { loadCheckpoint } from '../src/zoo/checkpoint.js';
import { listModelSpecs } from '../src/zoo/specs.js';
import { HfTokenizer } from '../src/zoo/tokenizer.js';

const manifest = readOracleManifest();
const pinned = Object.keys(manifest?.models ?? {});

describe('oracle manifest', () => {
  it('exists and pins every tiny zoo model', () => {
    expect(manifest, `oracles/manifest.json is missing: ${REPIN_COMMAND}`).toBeDefined();
    const missing = defaultPinnedModels().filter((m) => !pinned.includes(m));
    expect(missing, `tiny zoo models without an oracle baseline: ${REPIN_COMMAND} ${missing.join(' ')}`).toEqual([]);
  });

  it('is formatted as written (one fingerprint row per line) and records the fingerprint ids of its vocabulary', () => {
    if (manifest === undefined) return;
    expect(formatOracleManifest(JSON.parse(formatOracleManifest(manifest)) as OracleManifest)).toBe(formatOracleManifest(manifest));
    for (const [name, m] of Object.entries(manifest.models)) {
      expect(m.fingerprintIds, name).toEqual(fingerprintIds(m.vocabSize));
      for (const p of m.prompts) {
        expect(p.fingerprint, `${name} ${p.prompt}`).toHaveLength(p.promptIds.length + p.greedyIds.length);
        for (const row of p.fingerprint) expect(row).toHaveLength(m.fingerprintIds.length + 2);
      }
    }
  });
});

describe('fingerprint and comparison', () => {
  const V = 50;
  const logits = Float32Array.from({ length: 3 * V }, (_, i) => Math.sin(i) * 4);
  const record: OracleRecord = { promptIds: [1, 2], ids: [1, 2, 7], greedyIds: [7], vocabSize: V, hiddenSize: 4, logits, layerOutputs: [] };
  const identity = { modelSha256: 'a'.repeat(64), configSha256: 'b'.repeat(64), tokenizerSha256: 'c'.repeat(64) };
  const fake: OracleManifest = {
    manifestVersion: 1,
    fingerprint: '',
    models: {
      m: {
        arch: 'llama',
        ...identity,
        onnxruntime: 'x',
        oracleVersion: ORACLE_VERSION,
        maxNewTokens: 1,
        vocabSize: V,
        fingerprintIds: fingerprintIds(V),
        prompts: [
          {
            prompt: 'p',
            promptIds: [1, 2],
            greedyIds: [7],
            greedyText: '',
            logitsSha256: '',
            fingerprint: logitsFingerprint(logits, V, fingerprintIds(V)),
          },
        ],
      },
    },
  };

  it('spreads K distinct ids over the vocabulary', () => {
    expect(fingerprintIds(384)).toEqual([24, 72, 120, 168, 216, 264, 312, 360]);
    expect(new Set(fingerprintIds(9)).size).toBe(8);
    expect(fingerprintIds(3)).toEqual([0, 1, 2]);
  });

  it('accepts the same logits, flags changed greedy tokens, perturbed logits and stale inputs', () => {
    const same = compareToManifest('m', [record], { manifest: fake, identity });
    expect(same.status).toBe('ok');
    expect(same.maxFingerprintNmse).toBeLessThan(1e-14);

    const otherToken = compareToManifest('m', [{ ...record, greedyIds: [8], ids: [1, 2, 8] }], { manifest: fake });
    expect(otherToken.status).toBe('drift');
    expect(otherToken.prompts[0]!.firstGreedyMismatch).toBe(0);

    const nudged = Float32Array.from(logits, (x) => x * (1 + 1e-4));
    const drift = compareToManifest('m', [{ ...record, logits: nudged }], { manifest: fake });
    expect(drift.status).toBe('drift');
    expect(drift.problems.join('\n')).toMatch(/NMSE/);
    // the 8-digit rounding of the fingerprint alone is far inside the bound
    const tiny = Float32Array.from(logits, (x) => x * (1 + 2e-7));
    expect(compareToManifest('m', [{ ...record, logits: tiny }], { manifest: fake }).status).toBe('ok');

    const stale = compareToManifest('m', [record], { manifest: fake, identity: { ...identity, modelSha256: 'd'.repeat(64) } });
    expect(stale.status).toBe('stale');
    expect(stale.problems.join('\n')).toContain(`${REPIN_COMMAND} m`);
    expect(compareToManifest('n', [record], { manifest: fake }).status).toBe('unpinned');
    expect(
      fingerprintNmse(
        [[1, 2]],
        [
          [1, 2],
          [3, 4],
        ],
      ),
    ).toBe(Infinity);
  });
});

describe('pinning', () => {
  it('pins a model into a copy of the base manifest, keeping the other entries', async () => {
    const model = defaultPinnedModels()[0]!;
    const other = { ...Object.values(manifest?.models ?? {})[0]!, arch: 'other' };
    const base: OracleManifest = { manifestVersion: 1, fingerprint: '', models: { 'zz-other': other } };
    const m = await pinOracles([model], { base, prompts: ['Hello'], maxNewTokens: 3 });
    expect(Object.keys(m.models)).toEqual([model, 'zz-other'].sort());
    expect(m.models['zz-other']).toBe(other);
    const e = m.models[model]!;
    expect(e.prompts.map((p) => p.prompt)).toEqual(['Hello']);
    expect(e.prompts[0]!.greedyIds).toHaveLength(3);
    expect(e.prompts[0]!.fingerprint).toHaveLength(e.prompts[0]!.promptIds.length + 3);
    expect(e.modelSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses unknown model names before doing any work', async () => {
    await expect(oraclesCommand(['pin', 'no-such-model'])).rejects.toThrow(/unknown model 'no-such-model'/);
  });
});

const specs = listModelSpecs();

describe.each(pinned.map((m) => [m] as const))('oracle drift: %s', (model) => {
  const spec = specs.find((s) => s.name === model);
  const runnable = spec !== undefined && isTinyModel(spec) && (spec.kind !== 'checkpoint' || existsSync(join(spec.dir, 'config.json')));

  it('is still a model of the zoo', () => {
    expect(spec, `${model} is pinned in oracles/manifest.json but not in models/: ${REPIN_COMMAND}`).toBeDefined();
  });

  it.skipIf(!runnable)('a fresh oracle run reproduces the pinned greedy tokens and logits fingerprint', async () => {
    const entry = manifest!.models[model]!;
    const dir = await buildModel(spec!);
    const identity = modelIdentity(dir);
    const stale = staleness(model, entry, identity, DEFAULT_PROMPTS);
    if (stale.length > 0) expect.fail(`oracle baseline is stale, not drifted:\n${stale.join('\n')}`);

    const tokenizer = HfTokenizer.fromDir(dir);
    const promptIds = entry.prompts.map((p) => tokenizer.encode(p.prompt));
    const records = await runOracle(loadCheckpoint(dir), promptIds, { maxNewTokens: entry.maxNewTokens });
    const report = compareToManifest(model, records, { manifest: manifest!, identity });
    const lines = driftReportLines(report);
    console.log(`[oracle-drift] ${lines.join('\n')}`);
    expect(report.status, lines.join('\n')).toBe('ok');
  });
});
