/**
 * Sharded checkpoints the way the Hub ships larger models (`model-00001-of-00002.safetensors`, …, with
 * `model.safetensors.index.json`): read through the bounds-checked reader shard by shard, the same values as the
 * single file, clear errors for a broken index, and `tmgt check` passes the sharded copy exactly as the original.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ParityReport } from '../../src/report/parity.js';
import { buildModel } from '../../src/zoo/build.js';
import {
  checkpointWeights,
  checkpointWeightsSha256,
  loadCheckpoint,
  shardName,
  WEIGHTS_INDEX_FILE,
  writeShardedWeights,
} from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';

const BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'tmgt-sharded-'));
let single = '';
let sharded = '';

/** A copy of a checkpoint directory without its weights. */
function copyDirWithoutWeights(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(from, f), join(to, f));
}

beforeAll(async () => {
  const built = await buildModel(findModelSpec('llama-tiny'));
  single = join(root, 'llama-single');
  copyDirWithoutWeights(built, single);
  copyFileSync(join(built, 'model.safetensors'), join(single, 'model.safetensors'));
  sharded = join(root, 'llama-sharded');
  copyDirWithoutWeights(built, sharded);
  writeShardedWeights(sharded, loadCheckpoint(single), 2);
}, 60_000);

/** A fresh sharded copy whose index or shards a test may break. */
function scratchCopy(name: string): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  copyDirWithoutWeights(single, dir);
  writeShardedWeights(dir, loadCheckpoint(single), 2);
  return dir;
}

const readIndex = (dir: string): { weight_map: Record<string, string> } =>
  JSON.parse(readFileSync(join(dir, WEIGHTS_INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> };

describe('sharded safetensors checkpoints', () => {
  it('are found through the index, and load to exactly the single file’s tensors', () => {
    const w = checkpointWeights(sharded);
    expect(w.kind).toBe('sharded');
    expect(w.files.map((f) => f.split('/').pop())).toEqual([shardName(0, 2), shardName(1, 2)]);
    expect(shardName(0, 2)).toBe('model-00001-of-00002.safetensors');
    const a = loadCheckpoint(single);
    const b = loadCheckpoint(sharded);
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name);
      expect(u?.shape, name).toEqual(t.shape);
      expect(Buffer.compare(Buffer.from(u?.data.buffer ?? new ArrayBuffer(0)), Buffer.from(t.data.buffer)), name).toBe(0);
    }
    // Both shards hold tensors: the split is real.
    const files = new Set(Object.values(readIndex(sharded).weight_map));
    expect(files.size).toBe(2);
    expect(checkpointWeightsSha256(sharded)).not.toBe(checkpointWeightsSha256(single));
  });

  it('a missing shard is a clear error', () => {
    const dir = scratchCopy('missing-shard');
    rmSync(join(dir, shardName(1, 2)));
    expect(() => loadCheckpoint(dir)).toThrow(/shard model-00002-of-00002\.safetensors is missing/);
  });

  it('a tensor in two shards is a clear error', () => {
    const dir = scratchCopy('two-shards');
    const ckpt = loadCheckpoint(dir);
    const [name, t] = [...ckpt.tensors][0] as [string, { shape: number[]; data: Float32Array }];
    // Rewrite shard 2 with an extra copy of a shard-1 tensor: the index still says shard 1.
    const shard2 = new Map([...ckpt.tensors].filter(([n]) => readIndex(dir).weight_map[n] === shardName(1, 2)));
    shard2.set(name, t);
    const tmp = join(root, 'two-shards-tmp');
    mkdirSync(tmp, { recursive: true });
    writeShardedWeights(tmp, { config: ckpt.config, tensors: shard2 }, 1);
    copyFileSync(join(tmp, shardName(0, 1)), join(dir, shardName(1, 2)));
    expect(() => loadCheckpoint(dir)).toThrow(new RegExp(`tensor '${name.replaceAll('.', '\\.')}' is in two shards`));
  });

  it('an index entry its shard lacks, or a shard tensor the index does not list, is a clear error', () => {
    const dir = scratchCopy('bad-index');
    const index = readIndex(dir);
    const first = Object.keys(index.weight_map)[0] as string;
    writeFileSync(
      join(dir, WEIGHTS_INDEX_FILE),
      JSON.stringify({ weight_map: { ...index.weight_map, 'model.extra.weight': shardName(0, 2) } }),
    );
    expect(() => loadCheckpoint(dir)).toThrow(/maps 'model\.extra\.weight' to model-00001-of-00002\.safetensors, which does not hold it/);
    const { [first]: _dropped, ...rest } = index.weight_map;
    writeFileSync(join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ weight_map: rest }));
    expect(() => loadCheckpoint(dir)).toThrow(/does not list/);
    writeFileSync(join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ weight_map: { ...index.weight_map, [first]: '../model.safetensors' } }));
    expect(() => loadCheckpoint(dir)).toThrow(/not a file name in the checkpoint directory/);
  });

  it('tmgt check passes the sharded checkpoint exactly as the single file (gguf/q8_0, same verdicts)', async () => {
    const run = async (name: string, dir: string) => {
      const reportDir = mkdtempSync(join(tmpdir(), 'tmgt-sharded-report-'));
      const r = await execa(
        process.execPath,
        [BIN, 'check', '--models', `${name}=${dir}`, '--targets', 'gguf/q8_0', '--report-dir', reportDir],
        {
          reject: false,
          stdin: 'ignore',
        },
      );
      const report = JSON.parse(readFileSync(join(reportDir, 'parity.json'), 'utf8')) as ParityReport;
      // The model name, artifact path and timings differ by construction; every check, status, code and number must not.
      const cells = report.cells.map((c) => ({
        target: c.target,
        status: c.status,
        checks: c.checks,
        tensors: c.status === 'done' ? c.tensors : undefined,
      }));
      return { exitCode: r.exitCode, out: `${r.stdout}\n${r.stderr}`, cells, summary: report.summary };
    };
    const a = await run('single', single);
    const b = await run('sharded', sharded);
    expect(a.summary.checks, a.out).toBeGreaterThan(5);
    expect(a.exitCode, a.out).toBe(0);
    expect(b.exitCode, b.out).toBe(0);
    expect(b.summary).toEqual(a.summary);
    expect(b.cells).toEqual(a.cells);
  }, 180_000);

  it('the round trip through the cell’s own converter works from a sharded source (gguf/f16, gguf/bf16)', async () => {
    const reportDir = mkdtempSync(join(tmpdir(), 'tmgt-sharded-rt-'));
    const args = ['check', '--models', `sharded=${sharded}`, '--targets', 'gguf/f16,gguf/bf16', '--suites', 'file,roundtrip'];
    const r = await execa(process.execPath, [BIN, ...args, '--report-dir', reportDir], { reject: false, stdin: 'ignore' });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const report = JSON.parse(readFileSync(join(reportDir, 'parity.json'), 'utf8')) as ParityReport;
    const rt = report.cells.flatMap((c) => c.checks.filter((k) => k.suite === 'roundtrip'));
    expect(rt.map((k) => k.status)).toEqual(['pass', 'pass']);
    for (const k of rt) expect(k.metrics?.['tensorsMatching']).toBe(20);
  }, 120_000);

  it('tmgt inspect DIR and tmgt diff DIR FILE read every shard as one checkpoint', async () => {
    const inspect = await execa(process.execPath, [BIN, 'inspect', '--json', sharded], { reject: false });
    expect(inspect.exitCode, inspect.stderr).toBe(0);
    const rep = JSON.parse(inspect.stdout) as { tensorCount: number; parameterCount: number; metadata: Record<string, { value?: string }> };
    expect(rep.tensorCount).toBe(20);
    expect(rep.parameterCount).toBe(215520);
    expect(rep.metadata['shards']?.value).toBe(`2 files (${WEIGHTS_INDEX_FILE})`);
    const diff = await execa(process.execPath, [BIN, 'diff', sharded, join(single, 'model.safetensors')], { reject: false });
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/20 matched, 20 identical, 0 shape and 0 dtype differences/);
    const broken = scratchCopy('inspect-missing-shard');
    rmSync(join(broken, shardName(1, 2)));
    const bad = await execa(process.execPath, [BIN, 'inspect', broken], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/shard model-00002-of-00002\.safetensors is missing/);
  }, 60_000);
});
