import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { VerdictCode } from '../../src/checks/codes.js';
import { loadConfig } from '../../src/config-file.js';
import { DEFAULT_PROMPTS } from '../../src/config.js';
import { ConfinementError, type CommandConverter } from '../../src/converters/adapter.js';
import { parseTarget } from '../../src/converters/targets.js';
import { ALL_SUITES, runCell, type CellResult } from '../../src/matrix/run.js';

const FAKES = new URL('../fixtures/converters/', import.meta.url).pathname;
const fake = (id: string, script: string, extra: Partial<CommandConverter> = {}): CommandConverter => ({
  id,
  argv: [process.execPath, join(FAKES, script), '{source}', '{out}', '{type}', '{workdir}'],
  format: 'gguf',
  types: { 'gguf/f32': 'f32', 'gguf/q8_0': 'q8_0' },
  timeoutMs: 30_000,
  ...extra,
});

const config = await loadConfig();
const commandConverters: CommandConverter[] = [
  ...(config.converters ?? []),
  fake('fake:exit-nonzero', 'exit-nonzero.mjs'),
  fake('fake:hang', 'hang.mjs', { timeoutMs: 1500 }),
  fake('fake:write-nothing', 'write-nothing.mjs'),
  fake('fake:garbage', 'garbage.mjs'),
  fake('fake:truncated', 'truncated.mjs'),
  fake('fake:killed-by-signal', 'killed-by-signal.mjs'),
  fake('fake:zero-bytes', 'zero-bytes.mjs'),
  fake('fake:enormous', 'enormous.mjs'),
  fake('fake:symlink-out', 'symlink-out.mjs'),
  fake('fake:escape', 'write-nothing.mjs', { id: '../escape' }),
  fake('fake:not-installed', 'x', { argv: ['tmgt-no-such-converter-xyz', '{source}', '{out}'] }),
];

let lastWorkDir = '';
function run(converter: string, target = 'gguf/q8_0'): Promise<CellResult> {
  const workDir = mkdtempSync(join(tmpdir(), 'tmgt-cmd-'));
  lastWorkDir = workDir;
  return runCell(
    { converter, model: 'llama-tiny', target: parseTarget(target), engine: 'bundled' },
    { workDir, prompts: DEFAULT_PROMPTS, maxNewTokens: 32, converterTimeoutMs: 60_000, suites: ALL_SUITES, commandConverters },
  );
}

const codes = (r: CellResult): VerdictCode[] => [...new Set(r.checks.flatMap((c) => c.verdicts.map((v) => v.code)))];
const strip = (r: CellResult) =>
  r.checks.map((c) => ({ suite: c.suite, prompt: c.prompt, status: c.status, verdicts: c.verdicts, metrics: c.metrics }));

describe('command adapter: external converters as real subprocesses', () => {
  it('the reference converter through the command adapter gives exactly the built-in results', async () => {
    const [builtIn, viaCommand] = [await run('reference'), await run('command:reference')];
    if (viaCommand.status !== 'done' || builtIn.status !== 'done') throw new Error('a cell was skipped');
    expect(strip(viaCommand)).toEqual(strip(builtIn));
    expect(readFileSync(viaCommand.artifact ?? '')).toEqual(readFileSync(builtIn.artifact ?? ''));
    expect(codes(viaCommand)).toEqual([]);
  });

  for (const [id, code, detail] of [
    ['fake:exit-nonzero', 'F-RUNTIME-001', /exited with code 3/],
    ['fake:write-nothing', 'F-RUNTIME-001', /wrote no output/],
    ['fake:garbage', 'F-FILE-001', /magic/i],
    ['fake:truncated', 'F-FILE-002', /./],
    // The rest of the fault table (test/converters/faults.test.ts), here through the whole cell.
    ['fake:killed-by-signal', 'F-RUNTIME-001', /killed by SIGKILL/],
    ['fake:zero-bytes', 'F-RUNTIME-001', /wrote an empty file/],
    ['fake:enormous', 'F-RUNTIME-001', /over the \d+-byte output cap: not read/],
    ['fake:symlink-out', 'F-RUNTIME-001', /left a symbolic link/],
  ] as const) {
    it(`${id} → ${code}`, async () => {
      const r = await run(id);
      expect(codes(r)).toContain(code);
      expect(r.checks.flatMap((c) => c.verdicts.map((v) => v.message)).join('\n')).toMatch(detail);
    });
  }

  it('a converter that hangs is killed with its whole process tree at the timeout → F-RUNTIME-001', async () => {
    const r = await run('fake:hang');
    expect(codes(r)).toEqual(['F-RUNTIME-001']);
    expect(r.checks[0]?.verdicts[0]?.message).toMatch(/timed out after 1500 ms/);
    expect(r.checks[0]?.verdicts[0]?.evidence['timedOut']).toBe(true);
    const work = join(lastWorkDir, 'artifacts', readdirSync(join(lastWorkDir, 'artifacts')).find((f) => f.endsWith('.work')) ?? '');
    const pid = Number(readFileSync(join(work, 'grandchild.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(0);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 40 && alive(); i++) await new Promise((res) => setTimeout(res, 50));
    expect(alive(), `grandchild ${pid} survived the timeout`).toBe(false);
  });

  it('a converter id that would leave the work directory is a harness error (ConfinementError), not a verdict', async () => {
    await expect(run('../escape')).rejects.toThrow(ConfinementError);
  });

  it('a converter that is not installed is skipped with the reason, not failed, and the matrix goes on', async () => {
    const r = await run('fake:not-installed');
    expect(r.status === 'skipped' ? r.reason : undefined).toMatch(/'tmgt-no-such-converter-xyz' is not on PATH/);
    expect(r.checks).toEqual([]);
    const after = await run('reference', 'gguf/f32');
    expect(codes(after)).toEqual([]);
  });

  it("the package ships entries for apr, llama-quantize and the reference converter, merged into this repository's tmgt.config.ts", () => {
    const ids = (config.converters ?? []).map((c) => c.id);
    expect(ids).toEqual(expect.arrayContaining(['apr', 'llama-quantize', 'command:reference']));
    expect(existsSync(new URL('../../tmgt.config.ts', import.meta.url).pathname)).toBe(true);
  });
});
