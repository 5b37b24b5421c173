/**
 * Using tmgt from a converter's own repository: config discovery (cwd upwards to the repository root, --config wins,
 * the package's converters merged, reused or unsafe ids refused) and `tmgt init`, whose config `tmgt check` accepts
 * as it is (a real check run of the written config, through a real converter subprocess).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATH, findConfigFile, loadConfig, PACKAGE_CONVERTERS } from '../../src/config-file.js';
import { converterIdFor, splitCommand } from '../../src/cli/init.js';

const BIN = new URL('../../bin/tmgt.js', import.meta.url).pathname;
const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
// The models and oracles this repository's own tests use: the check runs below build nothing new.
const CACHE = join(REPO, 'node_modules', '.cache', 'tmgt');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tmgt-init-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tmgt = (args: string[], cwd: string, timeout = 30_000) =>
  execa(process.execPath, [BIN, ...args], { cwd, reject: false, timeout, env: { ...process.env, TMGT_CACHE_DIR: CACHE } });

const mjs = (body: string) => `export default ${body};\n`;

describe('config discovery', () => {
  it('finds tmgt.config.* in the cwd, then upwards, stopping at the repository root', () => {
    mkdirSync(join(dir, 'repo', '.git'), { recursive: true });
    mkdirSync(join(dir, 'repo', 'packages', 'conv'), { recursive: true });
    writeFileSync(join(dir, 'tmgt.config.mjs'), mjs('{}')); // above the repository root: never found from inside it
    expect(findConfigFile(join(dir, 'repo', 'packages', 'conv'))).toBeUndefined();
    writeFileSync(join(dir, 'repo', 'tmgt.config.js'), mjs('{}'));
    expect(findConfigFile(join(dir, 'repo', 'packages', 'conv'))).toBe(join(dir, 'repo', 'tmgt.config.js'));
    writeFileSync(join(dir, 'repo', 'packages', 'conv', 'tmgt.config.mjs'), mjs('{}'));
    writeFileSync(join(dir, 'repo', 'packages', 'conv', 'tmgt.config.ts'), 'export default {};\n');
    expect(findConfigFile(join(dir, 'repo', 'packages', 'conv'))).toBe(join(dir, 'repo', 'packages', 'conv', 'tmgt.config.ts'));
    expect(findConfigFile(REPO)).toBe(DEFAULT_CONFIG_PATH);
  });

  it("merges the user's converters with the package's; --config wins over discovery", async () => {
    const entry = (id: string) => `{ id: '${id}', argv: ['x', '{source}', '{out}'], format: 'gguf', types: { 'gguf/q8_0': 'q8_0' } }`;
    writeFileSync(join(dir, 'tmgt.config.mjs'), mjs(`{ converters: [${entry('mine')}], matrix: { targets: ['gguf/q8_0'] } }`));
    writeFileSync(join(dir, 'other.mjs'), mjs(`{ converters: [${entry('other')}] }`));
    const found = await loadConfig(undefined, dir);
    expect(found.configFile).toBe(join(dir, 'tmgt.config.mjs'));
    expect(found.converters?.map((c) => c.id)).toEqual([...PACKAGE_CONVERTERS.map((c) => c.id), 'mine']);
    expect(found.matrix?.targets).toEqual(['gguf/q8_0']);
    const explicit = await loadConfig('other.mjs', dir);
    expect(explicit.converters?.map((c) => c.id)).toEqual([...PACKAGE_CONVERTERS.map((c) => c.id), 'other']);
    // No config anywhere: the package's converters alone.
    const bare = mkdtempSync(join(tmpdir(), 'tmgt-bare-'));
    mkdirSync(join(bare, '.git'));
    try {
      expect((await loadConfig(undefined, bare)).converters?.map((c) => c.id)).toEqual(PACKAGE_CONVERTERS.map((c) => c.id));
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
    await expect(loadConfig('missing.mjs', dir)).rejects.toThrow(/missing\.mjs does not exist/);
  });

  it.each([
    ['apr', /converter 'apr' \(x \{source\} \{out\}\) reuses the id of the package's built-in converter 'apr' \(aprender's `apr import`/],
    ['llama-quantize', /reuses the id of the package's built-in converter 'llama-quantize'/],
    ['reference', /'reference' is reserved for the built-in converter 'reference'/],
    ['llama.cpp', /'llama.cpp' is reserved for the built-in converter 'llama.cpp'/],
    ['mutant:transpose', /'mutant:transpose' is reserved/],
    ['../escape', /converter id "\.\.\/escape" contains '\.\.'/],
    ['sub/dir', /converter id "sub\/dir" contains a path separator/],
    ['/abs', /converter id "\/abs" is an absolute path/],
  ] as const)('refuses a user converter id %s at load', async (id, message) => {
    writeFileSync(
      join(dir, 'tmgt.config.mjs'),
      mjs(`{ converters: [{ id: '${id}', argv: ['x', '{source}', '{out}'], format: 'gguf', types: {} }] }`),
    );
    await expect(loadConfig(undefined, dir)).rejects.toThrow(message);
  });
});

describe('tmgt init', () => {
  it('splits a command line into argv (quotes group, no shell)', () => {
    expect(splitCommand(`my-conv --in {source} --out "{out}" --name 'a b' x\\ y $(rm -rf)`)).toEqual([
      'my-conv',
      '--in',
      '{source}',
      '--out',
      '{out}',
      '--name',
      'a b',
      'x y',
      '$(rm',
      '-rf)',
    ]);
    expect(() => splitCommand('a "b')).toThrow(/unterminated/);
    expect(converterIdFor(['python3', 'tools/My Conv.py', '{source}'])).toBe('my-conv');
    expect(converterIdFor(['/usr/bin/hf2gguf', '{source}'])).toBe('hf2gguf');
  });

  it('writes tmgt.config.mjs and the workflow, never overwrites without --force, and prints the next command', async () => {
    const cmd = 'my-conv --in {source} --out {out} --type {type}';
    const r = await tmgt(['init', '--converter-cmd', cmd], dir);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote tmgt\.config\.mjs \(converter 'my-conv', gguf\/f32, gguf\/q8_0\)/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('next: npx tmgt check');
    const config = readFileSync(join(dir, 'tmgt.config.mjs'), 'utf8');
    expect(config).toContain("argv: ['my-conv', '--in', '{source}', '--out', '{out}', '--type', '{type}'],");
    const workflow = readFileSync(join(dir, '.github', 'workflows', 'parity.yml'), 'utf8');
    expect(workflow).toMatch(/- run: npx tmgt check\n/);
    expect(workflow).toMatch(/actions\/upload-artifact@v4[\s\S]*path: reports\//);

    writeFileSync(join(dir, 'tmgt.config.mjs'), '// mine\n');
    const again = await tmgt(['init', '--converter-cmd', cmd], dir);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/tmgt\.config\.mjs, \.github\/workflows\/parity\.yml already exist; --force overwrites/);
    expect(readFileSync(join(dir, 'tmgt.config.mjs'), 'utf8')).toBe('// mine\n');
    const forced = await tmgt(['init', '--converter-cmd', cmd, '--format', 'apr', '--targets', 'apr/int8', '--force'], dir);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(readFileSync(join(dir, 'tmgt.config.mjs'), 'utf8')).toContain("types: { 'apr/int8': 'int8' },");

    for (const [args, message] of [
      [['--converter-cmd', 'conv {source}'], /must contain \{out\}/],
      [['--converter-cmd', cmd, '--format', 'onnx'], /unknown --format 'onnx'/],
      [['--converter-cmd', cmd, '--targets', 'apr/int8'], /'apr\/int8' is not a gguf target/],
    ] as const) {
      const bad = await tmgt(['init', ...args, '--force'], dir);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
  });

  // The written config, untouched, run by `tmgt check` with no --config: a real converter subprocess (this package's
  // own reference conversion) on llama-tiny × gguf/q8_0. TypeScript (tsconfig.json present) and plain-JS projects.
  it.each([['mjs'], ['ts'], ['mts']] as const)(
    'tmgt check accepts the tmgt.config.%s that init writes',
    async (ext) => {
      mkdirSync(join(dir, '.git'));
      if (ext !== 'mjs') writeFileSync(join(dir, 'tsconfig.json'), '{}\n');
      // 'ts' only in an ESM package; a CommonJS TypeScript project gets .mts (a .ts config there would be CommonJS).
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'conv', private: true, ...(ext === 'ts' ? { type: 'module' } : {}) }),
      );
      const cmd = `node ${BIN} convert --model {source} --target gguf/{type} --out {out}`;
      const init = await tmgt(['init', '--converter-cmd', cmd, '--id', 'myconv', '--targets', 'gguf/q8_0'], dir);
      expect(init.exitCode, init.stderr).toBe(0);
      expect(existsSync(join(dir, `tmgt.config.${ext}`))).toBe(true);
      const r = await tmgt(['check', '--models', 'llama-tiny'], dir, 240_000);
      expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
      const report = JSON.parse(readFileSync(join(dir, 'reports', 'parity.json'), 'utf8')) as {
        converters: Record<string, { failed: number; passed: number }>;
      };
      expect(Object.keys(report.converters)).toEqual(['myconv']);
      expect(report.converters['myconv']?.failed).toBe(0);
      expect(report.converters['myconv']?.passed).toBeGreaterThan(10);
    },
    300_000,
  );
});
