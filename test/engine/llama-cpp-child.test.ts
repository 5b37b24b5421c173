/**
 * llama.cpp in one long-lived child (src/engines/isolated.ts): requests of a run share one child; an abort inside
 * llama.cpp or a hang fails only the request in flight, with how the child died, and the next request starts a
 * fresh child; results equal the in-process adapter's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireRole } from '../../src/converters/plan.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget } from '../../src/converters/targets.js';
import { EngineHost, engineHost, runEngineIsolated } from '../../src/engines/isolated.js';
import { runLlamaCppEngine } from '../../src/engines/llama-cpp.js';
import type { EngineRequest, EngineResult } from '../../src/engines/types.js';
import { buildModel } from '../../src/zoo/build.js';
import { findModelSpec } from '../../src/zoo/specs.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-engine-child-'));
const hosts: EngineHost[] = [];
afterAll(() => {
  for (const h of hosts) h.close();
  rmSync(workDir, { recursive: true, force: true });
});

async function artifact(name: string, mutate?: Parameters<typeof convertCheckpoint>[3]): Promise<string> {
  const path = join(workDir, `${name}.gguf`);
  convertCheckpoint(await buildModel(findModelSpec('llama-tiny')), parseTarget('gguf/f32'), path, mutate);
  return path;
}

const request = (path: string, maxNewTokens = 0): EngineRequest => ({
  artifact: path,
  format: 'gguf',
  sequences: [
    [1, 20, 30, 40, 50, 60],
    [7, 8, 9],
  ],
  maxNewTokens,
  promptLengths: [4, 2],
  captureLayers: false,
});

function ok(r: EngineResult) {
  if (r.status !== 'ok') throw new Error(`engine failed: ${r.message}`);
  return r;
}

/** Each test starts one or two children (tsx + node-llama-cpp start-up, seconds each on a loaded 2-core machine). */
const TIMEOUT_MS = 300_000;

describe('llama.cpp in one long-lived child', { timeout: TIMEOUT_MS }, () => {
  it("serves every request of a run from one child, with the in-process adapter's results", async () => {
    const good = await artifact('good');
    const host = new EngineHost('llama.cpp');
    hosts.push(host);
    const a = ok(await host.run(request(good, 3)));
    const b = ok(await host.run(request(good)));
    // two at once queue behind each other in the same child
    const [c, d] = await Promise.all([host.run(request(good)), host.run(request(good, 2))]);
    expect(host.starts).toBe(1);
    const direct = ok(await runLlamaCppEngine(request(good, 3)));
    for (const [i, s] of a.sequences.entries()) {
      expect(Array.from(s.logits)).toEqual(Array.from(direct.sequences[i]!.logits));
      expect(s.greedyIds).toEqual(direct.sequences[i]!.greedyIds);
      expect(s.greedyIds).toHaveLength(3);
      expect(Array.from(ok(b).sequences[i]!.logits)).toEqual(Array.from(s.logits));
    }
    expect(ok(c).sequences).toHaveLength(2);
    expect(ok(d).sequences[0]!.greedyIds).toHaveLength(2);
  });

  it('an abort inside llama.cpp fails the request in flight with how the child died; the next request restarts it', async () => {
    // ggml aborts on an F16 RMSNorm gain (binary_op: unsupported types), killing the process that loaded it.
    const aborting = await artifact('f16-norm', (plan) => {
      requireRole(plan, 'output_norm.weight').dtype = 'F16';
    });
    const good = await artifact('good-2');
    const host = new EngineHost('llama.cpp');
    hosts.push(host);
    ok(await host.run(request(good)));
    const bad = await host.run(request(aborting));
    expect(bad.status).toBe('failed');
    if (bad.status === 'failed') expect(bad.message).toMatch(/llama\.cpp (crashed \(SIG[A-Z]+\)|exited with code)/);
    expect(ok(await host.run(request(good))).sequences).toHaveLength(2);
    expect(host.starts).toBe(2);
  });

  it('a request over its time limit fails as timed out and the next one gets a fresh child', async () => {
    const good = await artifact('good-3');
    const host = new EngineHost('llama.cpp');
    hosts.push(host);
    const slow = await host.run(request(good), 1);
    expect(slow.status).toBe('failed');
    if (slow.status === 'failed') expect(slow.message).toMatch(/timed out after 1 ms/);
    expect(ok(await host.run(request(good))).sequences).toHaveLength(2);
    expect(host.starts).toBe(2);
  });

  it("runEngineIsolated keeps its signature and uses the run's shared host; an unknown engine is a failed result", async () => {
    const good = await artifact('good-4');
    const before = engineHost('llama.cpp').starts;
    ok(await runEngineIsolated('llama.cpp', request(good)));
    ok(await runEngineIsolated('llama.cpp', request(good)));
    expect(engineHost('llama.cpp').starts - before).toBeLessThanOrEqual(1);
    hosts.push(engineHost('llama.cpp'));
    const r = await runEngineIsolated('no-such-engine', request(good));
    expect(r.status).toBe('failed');
  });
});
