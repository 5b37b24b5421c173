/**
 * The package as a converter author gets it (issue 14): `npm pack` this project, install the tarball into a fresh
 * project that has its own tmgt.config.mjs declaring its converter (a small node script running the package's
 * reference conversion, or the same conversion truncated), and run `npx tmgt check` there with no --config. The
 * correct converter passes (exit 0), the broken one fails with F-FILE-002 (exit 1); the cache is the project's
 * node_modules/.cache/tmgt; nothing is written inside the installed package; the library imports as compiled ESM.
 *
 * Measured on 2 shared cores: npm pack (prepack builds dist/) ~40 s, npm install of the tarball from the warm npm
 * cache ~65 s (--prefer-offline --ignore-scripts: node_modules is 1.2 GB, mostly onnxruntime-node and node-llama-cpp
 * binaries), each check ~20 s with a cold cache. Under the 90 s install budget, so it runs in `make test`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const MAX_TARBALL_BYTES = 5 * 2 ** 20;

let root: string;
let project: string;
let tarball: string;

/** Every file under `dir` with its size and mtime: the installed package must not change under a check run. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const s = statSync(p);
        out.set(relative(dir, p), `${s.size}:${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

// The user's converter: this package's reference conversion through its own CLI, then optionally broken.
const CONVERTER = `import { execFileSync } from 'node:child_process';
import { statSync, truncateSync } from 'node:fs';
import { createRequire } from 'node:module';
const [source, type, out, mode] = process.argv.slice(2);
const pkg = createRequire(import.meta.url).resolve('tiny-model-ground-truth/package.json');
const bin = pkg.replace(/package\\.json$/, 'bin/tmgt.js');
execFileSync(process.execPath, [bin, 'convert', '--model', source, '--target', 'gguf/' + type, '--out', out], { stdio: 'inherit' });
if (mode === '--truncate') truncateSync(out, statSync(out).size - 4096);
`;

const CONFIG = `export default {
  converters: [
    { id: 'myconv', argv: ['node', 'myconv.mjs', '{source}', '{type}', '{out}'], format: 'gguf', types: { 'gguf/q8_0': 'q8_0' } },
    { id: 'broken', argv: ['node', 'myconv.mjs', '{source}', '{type}', '{out}', '--truncate'], format: 'gguf', types: { 'gguf/q8_0': 'q8_0' } },
  ],
};
`;

describe('the packed package, installed in a converter project', () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tmgt-package-'));
    let t = performance.now();
    // prepack (npm run build) prints to stdout too, so the tarball is found on disk rather than in npm's output.
    const pack = await execa('npm', ['pack', '--pack-destination', root], { cwd: REPO, reject: false, timeout: 300_000 });
    const packMs = performance.now() - t;
    expect(pack.exitCode, pack.stderr).toBe(0);
    const tarballs = readdirSync(root).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    tarball = join(root, tarballs[0] ?? '');
    project = join(root, 'conv');
    mkdirSync(project);
    // A repository of its own: config discovery stops at its root, not in a parent's tmgt.config.*.
    mkdirSync(join(project, '.git'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-converter', version: '1.0.0', private: true, type: 'module' }));
    writeFileSync(join(project, 'myconv.mjs'), CONVERTER);
    writeFileSync(join(project, 'tmgt.config.mjs'), CONFIG);
    t = performance.now();
    // Every dependency is in the npm cache already; no install scripts (onnxruntime-node's would fetch CUDA binaries).
    const install = await execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], {
      cwd: project,
      reject: false,
      timeout: 600_000,
    });
    const installMs = performance.now() - t;
    expect(install.exitCode, install.stderr).toBe(0);
    process.stderr.write(`package e2e: pack ${(packMs / 1000).toFixed(1)} s, install ${(installMs / 1000).toFixed(1)} s\n`);
  }, 900_000);
  afterAll(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const installed = () => join(project, 'node_modules', 'tiny-model-ground-truth');
  // The user's environment: no cache override, so the conventional location is what is tested.
  const env = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'TMGT_CACHE_DIR' && k !== 'TMGT_DIST'));
  const check = (converter: string) =>
    execa('npx', ['tmgt', 'check', '--converter', converter, '--models', 'llama-tiny', '--targets', 'gguf/q8_0'], {
      cwd: project,
      env: env(),
      extendEnv: false,
      reject: false,
      timeout: 300_000,
    });

  it('is lean: under 5 MB, compiled dist/ with types, no sources, tests, fixtures or training code', () => {
    expect(statSync(tarball).size).toBeLessThan(MAX_TARBALL_BYTES);
    const files = [...snapshot(installed()).keys()];
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/engine/wasm/build/kernels.wasm');
    expect(files).toContain('dist/report/templates/dashboard.eta');
    expect(files).toContain('oracles/manifest.json');
    expect(files.filter((f) => /^(src|test|training|fuzz|bench|suites)\//.test(f) || f.endsWith('.test.js'))).toEqual([]);
  });

  it('imports as compiled ESM through its exports', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('tiny-model-ground-truth'); console.log(typeof m.loadConfig, typeof m.defineConfig)",
      ],
      {
        cwd: project,
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toBe('function function');
  });

  it('npx tmgt check: exit 0 for the correct converter, found through tmgt.config.mjs, cache in node_modules/.cache/tmgt', async () => {
    const before = snapshot(installed());
    const r = await check('myconv');
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/parity: (\d+)\/\1 checks passing/);
    const report = JSON.parse(readFileSync(join(project, 'reports', 'parity.json'), 'utf8')) as {
      summary: { failed: number; passed: number };
    };
    expect(report.summary.failed).toBe(0);
    expect(report.summary.passed).toBeGreaterThan(10);
    const cache = join(project, 'node_modules', '.cache', 'tmgt');
    expect(readdirSync(join(cache, 'models')).some((d) => d.startsWith('llama-tiny-'))).toBe(true);
    expect(readdirSync(join(cache, 'oracles')).length).toBeGreaterThan(0);
    expect(snapshot(installed())).toEqual(before);
    expect(existsSync(join(installed(), '.cache'))).toBe(false);
  }, 360_000);

  it('npx tmgt check: exit 1 with F-FILE-002 for the broken converter, nothing written inside the package', async () => {
    const before = snapshot(installed());
    const r = await check('broken');
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(1);
    expect(r.stdout).toMatch(/error: F-FILE-002/);
    expect(snapshot(installed())).toEqual(before);
  }, 360_000);
});
