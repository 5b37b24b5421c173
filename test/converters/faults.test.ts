/**
 * Converter faults through the command adapter, each with a tiny executable under
 * test/fixtures/converters/: every way a converter can fail yields a typed failure — F-RUNTIME-001 for the
 * converter, or the reader's F-FILE-* for the bytes it wrote — and the next conversion still works. Then
 * confinement: no shell, placeholders arrive verbatim as single arguments, and a converter id or model name
 * that could steer a path out of the work directory is refused before anything runs.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  artifactPath,
  ConfinementError,
  runCommandConverter,
  runConverter,
  type CommandConverter,
  type ConvertResult,
} from '../../src/converters/adapter.js';
import { parseTarget } from '../../src/converters/targets.js';
import { HarnessError } from '../../src/errors.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { quantize } from '../../src/formats/codecs/index.js';
import { encodeGguf } from '../../src/formats/gguf/writer.js';
import { readModelFile } from '../../src/formats/read-model.js';

const FAKES = new URL('../fixtures/converters/', import.meta.url).pathname;
const TARGET = parseTarget('gguf/f32');

let root = '';
let sourceDir = '';
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tmgt-faults-'));
  sourceDir = join(root, 'source');
  mkdirSync(sourceDir);
  const model = encodeGguf({
    kvs: [{ key: 'general.architecture', type: 'string', value: 'llama' }],
    tensors: [
      {
        name: 'token_embd.weight',
        shape: [4, 8],
        dtype: 'F32',
        data: quantize(
          'F32',
          Float32Array.from({ length: 32 }, (_, i) => i / 7),
        ),
      },
    ],
  });
  writeFileSync(join(sourceDir, 'model.gguf'), model);
});

const fake = (script: string, extra: Partial<CommandConverter> = {}): CommandConverter => ({
  id: `fault:${script.replace(/\.mjs$/, '')}`,
  argv: [process.execPath, join(FAKES, script), '{source}', '{out}', '{type}', '{workdir}'],
  format: 'gguf',
  types: { 'gguf/f32': 'f32' },
  timeoutMs: 30_000,
  ...extra,
});

interface Outcome {
  result: ConvertResult;
  /** The verdict codes the matrix would record: F-RUNTIME-001 for a failed converter, else the reader's. */
  codes: string[];
  message: string;
}

/** Convert with `conv`, then judge as the matrix does: a failure → F-RUNTIME-001; bytes → the reader's verdicts. */
async function convert(conv: CommandConverter, model = 'tiny'): Promise<Outcome> {
  const req = { converter: conv.id, model, sourceDir, target: TARGET, outDir: join(root, 'artifacts'), timeoutMs: 30_000 };
  const result = await runCommandConverter(conv, req, () => Promise.reject(new Error('no reference GGUF in these tests')));
  if (result.status === 'skipped') return { result, codes: [], message: result.reason };
  // As the matrix does (src/matrix/context.ts): a failed converter is one F-RUNTIME-001 carrying the reason.
  if (result.status === 'failed') return { result, codes: ['F-RUNTIME-001'], message: `converter '${conv.id}' ${result.reason}` };
  const src = new FileByteSource(result.artifact);
  try {
    const file = readModelFile(src);
    return { result, codes: [...new Set(file.issues.map((i) => i.code))], message: file.issues.map((i) => i.message).join('\n') };
  } finally {
    src.close();
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function waitDead(pid: number): Promise<boolean> {
  for (let i = 0; i < 60 && alive(pid); i++) await new Promise((res) => setTimeout(res, 50));
  return !alive(pid);
}
const workdirOf = (conv: CommandConverter): string => join(root, 'artifacts', `tiny.${conv.id}.f32.work`);

/** The fault table: fixture, expected code, what the message must say. */
const FAULTS = [
  { fault: 'exits non-zero', script: 'exit-nonzero.mjs', code: 'F-RUNTIME-001', says: /exited with code 3/ },
  { fault: 'killed by a signal', script: 'killed-by-signal.mjs', code: 'F-RUNTIME-001', says: /killed by SIGKILL/ },
  {
    fault: 'hangs (tree killed at the timeout)',
    script: 'hang.mjs',
    code: 'F-RUNTIME-001',
    says: /timed out after 1500 ms/,
    timeoutMs: 1500,
  },
  {
    fault: 'writes nothing',
    script: 'write-nothing.mjs',
    code: 'F-RUNTIME-001',
    says: /wrote no output at \S+tiny\.fault_write-nothing\.f32\.gguf$/,
  },
  { fault: 'writes a 0-byte file', script: 'zero-bytes.mjs', code: 'F-RUNTIME-001', says: /wrote an empty file \(0 bytes\)/ },
  { fault: 'writes garbage', script: 'garbage.mjs', code: 'F-FILE-001', says: /unknown format: 4096 bytes/ },
  {
    fault: 'writes an enormous file',
    script: 'enormous.mjs',
    code: 'F-RUNTIME-001',
    says: /wrote 68719476736 bytes .* over the 34359738368-byte output cap: not read/,
  },
  {
    fault: 'writes to another path',
    script: 'other-path.mjs',
    code: 'F-RUNTIME-001',
    says: /wrote no output at .*; it wrote \S+\.gguf\.tmp instead/,
  },
  {
    fault: 'leaves a child process behind',
    script: 'orphan.mjs',
    code: 'F-RUNTIME-001',
    says: /left 1 process\(es\) running in its process group/,
  },
  {
    fault: 'leaves a symlink at {out}',
    script: 'symlink-out.mjs',
    code: 'F-RUNTIME-001',
    says: /left a symbolic link at \S+, not a regular file/,
  },
  { fault: 'prints without end', script: 'flood-log.mjs', code: 'F-RUNTIME-001', says: /printed more than 16777216 bytes of log/ },
] as const;

describe('converter faults: each a typed failure, and the next conversion still works', () => {
  it('the healthy fake converter reads cleanly (the baseline every fault is compared with)', async () => {
    const ok = await convert(fake('copy-model.mjs'));
    expect(ok.result.status).toBe('ok');
    expect(ok.codes).toEqual([]);
  });

  for (const f of FAULTS) {
    it(`${f.fault} → ${f.code}`, async () => {
      const conv = fake(f.script, 'timeoutMs' in f ? { timeoutMs: f.timeoutMs } : {});
      const heapBefore = process.memoryUsage();
      const bad = await convert(conv);
      const heapAfter = process.memoryUsage();
      expect(bad.codes).toEqual([f.code]);
      expect(bad.message).toMatch(f.says);
      // Nothing the converter did may have been loaded whole (the enormous file is 64 GiB).
      expect(heapAfter.arrayBuffers - heapBefore.arrayBuffers).toBeLessThan(64 * 2 ** 20);

      if (f.script === 'hang.mjs') {
        expect(bad.result.status === 'failed' && bad.result.timedOut).toBe(true);
        const pid = Number(readFileSync(join(workdirOf(conv), 'grandchild.pid'), 'utf8'));
        expect(await waitDead(pid), `grandchild ${pid} survived the timeout`).toBe(true);
      }
      if (f.script === 'orphan.mjs') {
        const pid = Number(readFileSync(join(workdirOf(conv), 'orphan.pid'), 'utf8'));
        expect(await waitDead(pid), `orphan ${pid} survived its converter`).toBe(true);
      }
      if (f.script === 'killed-by-signal.mjs') expect(bad.result.status === 'failed' && bad.result.signal).toBe('SIGKILL');

      const next = await convert(fake('copy-model.mjs'));
      expect(next.result.status).toBe('ok');
      expect(next.codes).toEqual([]);
    });
  }

  it('a stale {out} from an earlier run does not pass for the output of a converter that writes nothing', async () => {
    const conv = fake('write-nothing.mjs');
    const out = artifactPath({ converter: conv.id, model: 'tiny', target: TARGET, outDir: join(root, 'artifacts') });
    writeFileSync(out, readFileSync(join(sourceDir, 'model.gguf')));
    const r = await convert(conv);
    expect(r.codes).toEqual(['F-RUNTIME-001']);
    expect(existsSync(out)).toBe(false);
  });

  it('an output within a lower configured cap passes, above it fails', async () => {
    const size = readFileSync(join(sourceDir, 'model.gguf')).length;
    expect((await convert(fake('copy-model.mjs', { maxOutputBytes: size }))).result.status).toBe('ok');
    const over = await convert(fake('copy-model.mjs', { maxOutputBytes: size - 1 }));
    expect(over.message).toMatch(new RegExp(`wrote ${size} bytes .* over the ${size - 1}-byte output cap`));
  });
});

describe('confinement', () => {
  it('no shell: placeholders arrive verbatim, one argument each, never re-expanded', async () => {
    const nasty = join(root, `src with spaces "dq" 'sq' $(touch PWNED) ; touch PWNED2 {out} * \\ end`);
    mkdirSync(nasty, { recursive: true });
    const conv: CommandConverter = {
      id: 'fault:echo-argv',
      argv: [process.execPath, join(FAKES, 'echo-argv.mjs'), '{source}', '--in={source}', '{type}', '$HOME', '`id`', '{workdir}', '{out}'],
      format: 'gguf',
      types: { 'gguf/f32': 'f32' },
    };
    const req = { converter: conv.id, model: 'tiny', sourceDir: nasty, target: TARGET, outDir: join(root, 'artifacts'), timeoutMs: 30_000 };
    const r = await runCommandConverter(conv, req, () => Promise.reject(new Error('unused')));
    expect(r.status).toBe('ok');
    const out = artifactPath(req);
    const workdir = join(root, 'artifacts', 'tiny.fault:echo-argv.f32.work');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual([nasty, `--in=${nasty}`, 'f32', '$HOME', '`id`', workdir, out]);
    for (const dir of [root, nasty, process.cwd()]) expect(readdirSync(dir).filter((n) => n.startsWith('PWNED'))).toEqual([]);
  });

  const BAD_NAMES = ['..', '../escape', 'a/../../b', 'sub/dir', '/etc/passwd', 'back\\slash', '', 'nul\0byte'] as const;

  it.each(BAD_NAMES)('converter id %j is refused with a ConfinementError before anything runs', async (id) => {
    const outDir = join(root, `refused-${Math.random().toString(36).slice(2)}`);
    const conv = { ...fake('echo-argv.mjs'), id };
    const req = { converter: id, model: 'tiny', sourceDir, target: TARGET, outDir, timeoutMs: 30_000 };
    const err = await runCommandConverter(conv, req, () => Promise.reject(new Error('unused'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfinementError);
    expect(err).toBeInstanceOf(HarnessError);
    // Asserted to be a HarnessError just above.
    expect((err as HarnessError).code).toBe('E-CONFINEMENT');
    expect(existsSync(outDir)).toBe(false);
    await expect(runConverter({ ...req, converter: id })).rejects.toThrow(ConfinementError);
    expect(existsSync(outDir)).toBe(false);
  });

  it.each(BAD_NAMES)('model name %j is refused with a ConfinementError before anything runs', async (model) => {
    const outDir = join(root, `refused-${Math.random().toString(36).slice(2)}`);
    const conv = fake('echo-argv.mjs');
    const req = { converter: conv.id, model, sourceDir, target: TARGET, outDir, timeoutMs: 30_000 };
    await expect(runCommandConverter(conv, req, () => Promise.reject(new Error('unused')))).rejects.toThrow(ConfinementError);
    await expect(runConverter(req)).rejects.toThrow(/model name .* (is empty|absolute|contains)/);
    expect(existsSync(outDir)).toBe(false);
  });

  it('{out} is inside the work directory for every id and model name that is not refused', () => {
    const outDir = join(root, 'artifacts');
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), (converter, model) => {
        let out: string;
        try {
          out = artifactPath({ converter, model, target: TARGET, outDir });
        } catch (e) {
          if (!(e instanceof ConfinementError)) throw e;
          return;
        }
        const rel = relative(outDir, out);
        expect(rel.startsWith('..') || rel.includes('/') || rel === '').toBe(false);
      }),
      { numRuns: 2000, seed: 13 },
    );
  });
});
