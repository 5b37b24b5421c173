/**
 * The cache (src/cache.ts): where it lives, that every entry is verified by size and sha256 when read (a corrupt or
 * truncated entry is reported once and rebuilt), and that real processes sharing one cache build an entry once and
 * never hand out a half-written or removed one.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cacheInfo, cacheRoot, cachedDir, cleanCache, verifyEntry } from '../src/cache.js';

const CACHE_TS = new URL('../src/cache.ts', import.meta.url).pathname;
const BIN = new URL('../bin/tmgt.js', import.meta.url).pathname;
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

let dir: string;
const saved = { TMGT_CACHE_DIR: process.env['TMGT_CACHE_DIR'], XDG_CACHE_HOME: process.env['XDG_CACHE_HOME'] };
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tmgt-cache-'));
  process.env['TMGT_CACHE_DIR'] = join(dir, 'cache');
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('cacheRoot', () => {
  it('TMGT_CACHE_DIR wins; an empty value means the default', () => {
    expect(cacheRoot(dir)).toBe(join(dir, 'cache'));
    process.env['TMGT_CACHE_DIR'] = '';
    mkdirSync(join(dir, 'proj', 'node_modules'), { recursive: true });
    expect(cacheRoot(join(dir, 'proj'))).toBe(join(dir, 'proj', 'node_modules', '.cache', 'tmgt'));
  });

  it('the nearest node_modules at or above the cwd, else $XDG_CACHE_HOME/tmgt', () => {
    delete process.env['TMGT_CACHE_DIR'];
    mkdirSync(join(dir, 'proj', 'node_modules'), { recursive: true });
    mkdirSync(join(dir, 'proj', 'packages', 'conv', 'src'), { recursive: true });
    expect(cacheRoot(join(dir, 'proj', 'packages', 'conv', 'src'))).toBe(join(dir, 'proj', 'node_modules', '.cache', 'tmgt'));
    // No node_modules anywhere above a fresh temp dir (tmpdir() is not inside a project).
    if (!existsSync(join(tmpdir(), 'node_modules')) && !existsSync('/node_modules')) {
      process.env['XDG_CACHE_HOME'] = join(dir, 'xdg');
      expect(cacheRoot(join(dir, 'elsewhere'))).toBe(join(dir, 'xdg', 'tmgt'));
    }
  });
});

describe('cachedDir integrity', () => {
  const build = (count: { n: number }) => (d: string) => {
    count.n++;
    writeFileSync(
      join(d, 'a.bin'),
      new Uint8Array(4096).map((_, i) => i % 251),
    );
    writeFileSync(join(d, 'b.json'), JSON.stringify({ n: 1 }));
  };

  it.each([
    [
      'a flipped byte',
      (e: string) => writeFileSync(join(e, 'a.bin'), Buffer.from(readFileSync(join(e, 'a.bin')).map((b, i) => (i === 100 ? b ^ 1 : b)))),
      /a\.bin does not match its sha256/,
    ],
    ['a truncated file', (e: string) => truncateSync(join(e, 'a.bin'), 1000), /a\.bin has 1000 bytes, the manifest 4096/],
    ['a missing file', (e: string) => rmSync(join(e, 'b.json')), /b\.json is missing/],
    ['a garbled manifest', (e: string) => writeFileSync(join(e, '.manifest.json'), '{"a.bin": '), /manifest is unreadable/],
  ] as const)('%s is reported once on stderr and rebuilt', async (_name, corrupt, message) => {
    const count = { n: 0 };
    const key = `k-${Math.random().toString(36).slice(2)}`;
    const entry = await cachedDir('models', key, build(count));
    expect(verifyEntry(entry)).toBeUndefined();
    expect(await cachedDir('models', key, build(count))).toBe(entry);
    expect(count.n).toBe(1);
    corrupt(entry);
    expect(verifyEntry(entry)).toMatch(message);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await cachedDir('models', key, build(count))).toBe(entry);
      expect(count.n).toBe(2);
      expect(verifyEntry(entry)).toBeUndefined();
      corrupt(entry); // the same entry again in this process: rebuilt, not reported a second time
      await cachedDir('models', key, build(count));
      expect(count.n).toBe(3);
      const lines = stderr.mock.calls.map((c) => String(c[0])).filter((l) => l.includes(key));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
      expect(lines[0]).toMatch(/rebuilding/);
    } finally {
      stderr.mockRestore();
    }
    expect(readdirSync(join(process.env['TMGT_CACHE_DIR'] ?? '', 'models')).filter((f) => f !== key)).toEqual([]); // no tmp/lock left
  });

  it('a failing build leaves no entry, no temp dir and no lock', async () => {
    await expect(cachedDir('oracles', 'x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(readdirSync(join(process.env['TMGT_CACHE_DIR'] ?? '', 'oracles'))).toEqual([]);
  });

  it('cacheInfo sizes each kind; cleanCache removes one kind or all', async () => {
    await cachedDir('models', 'm', build({ n: 0 }));
    await cachedDir('oracles', 'o', (d) => writeFileSync(join(d, 'x'), 'y'.repeat(10)));
    await cachedDir('tokenizer-pre', 't', (d) => writeFileSync(join(d, 'x'), 'z'));
    const info = cacheInfo();
    expect(info.kinds.models.entries).toBe(1);
    expect(info.kinds.models.bytes).toBeGreaterThan(4096);
    expect(info.kinds.oracles.entries).toBe(1);
    expect(info.kinds.artifacts.entries).toBe(1);
    expect(cleanCache('oracles')).toBe(info.kinds.oracles.bytes);
    expect(cacheInfo().kinds.oracles.bytes).toBe(0);
    expect(cacheInfo().kinds.models.bytes).toBe(info.kinds.models.bytes);
    cleanCache();
    expect(readdirSync(info.root)).toEqual([]);
  });
});

describe('tmgt cache', () => {
  it('info prints the location and size per kind; clean --kind removes that kind only; a bad kind exits 2', async () => {
    const cache = join(dir, 'cli-cache');
    const env = { ...process.env, TMGT_CACHE_DIR: cache };
    mkdirSync(join(cache, 'models', 'm'), { recursive: true });
    writeFileSync(join(cache, 'models', 'm', 'w'), Buffer.alloc(3 * 2 ** 20));
    mkdirSync(join(cache, 'oracles', 'o'), { recursive: true });
    writeFileSync(join(cache, 'oracles', 'o', 'r'), Buffer.alloc(2 ** 20));
    const tmgt = (args: string[]) => execa(process.execPath, [BIN, 'cache', ...args], { env, reject: false, timeout: 60_000 });
    const info = await tmgt(['info']);
    expect(info.exitCode, info.stderr).toBe(0);
    expect(info.stdout).toContain(`cache: ${cache}`);
    expect(info.stdout).toMatch(/models\s+3\.0 MiB\s+1 entries/);
    expect(info.stdout).toMatch(/oracles\s+1\.0 MiB\s+1 entries/);
    const clean = await tmgt(['clean', '--kind', 'oracles']);
    expect(clean.exitCode, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/removed oracles .*\(1\.0 MiB\)/);
    expect(existsSync(join(cache, 'oracles'))).toBe(false);
    expect(existsSync(join(cache, 'models', 'm', 'w'))).toBe(true);
    const bad = await tmgt(['clean', '--kind', 'weights']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/unknown cache kind 'weights' \(known: models, oracles, artifacts\)/);
  }, 120_000);
});

// A child process that builds one entry slowly (so the two overlap) and logs each build and what it read back.
const CHILD = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const { cachedDir } = await import(process.env.CACHE_TS);
const log = process.env.LOG;
const dir = await cachedDir('models', 'shared', async (d) => {
  appendFileSync(log, 'build ' + process.pid + '\\n');
  for (let i = 0; i < 8; i++) {
    writeFileSync(join(d, 'part-' + i), Buffer.alloc(256 * 1024, i));
    await new Promise((r) => setTimeout(r, 40));
  }
});
for (let i = 0; i < 8; i++) if (!readFileSync(join(dir, 'part-' + i)).every((b) => b === i)) throw new Error('bad part ' + i);
appendFileSync(log, 'read ' + process.pid + ' ' + dir + '\\n');
`;

describe('two real processes sharing a cache', () => {
  const run = (log: string) =>
    execa(process.execPath, ['--import', TSX, '--input-type=module', '-e', CHILD], {
      env: { ...process.env, CACHE_TS: pathToFileURL(CACHE_TS).href, LOG: log },
      reject: false,
      timeout: 60_000,
    });

  it('build an entry once and both read it whole', async () => {
    const log = join(dir, 'log');
    writeFileSync(log, '');
    const [a, b] = await Promise.all([run(log), run(log)]);
    expect([a.exitCode, b.exitCode, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.filter((l) => l.startsWith('build '))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('read '))).toHaveLength(2);
    const entry = join(process.env['TMGT_CACHE_DIR'] ?? '', 'models', 'shared');
    expect(verifyEntry(entry)).toBeUndefined();
    expect(readdirSync(join(entry, '..'))).toEqual(['shared']);
  }, 90_000);

  it('repair a corrupt entry once: one report, one rebuild, both read the repaired entry', async () => {
    const log = join(dir, 'log');
    writeFileSync(log, '');
    expect((await run(log)).exitCode).toBe(0);
    const entry = join(process.env['TMGT_CACHE_DIR'] ?? '', 'models', 'shared');
    truncateSync(join(entry, 'part-3'), 10);
    writeFileSync(log, '');
    const [a, b] = await Promise.all([run(log), run(log)]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const reports = [a.stderr, b.stderr]
      .join('\n')
      .split('\n')
      .filter((l) => l.includes('is corrupt'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/models\/shared is corrupt: part-3 has 10 bytes/);
    expect(
      readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('build ')),
    ).toHaveLength(1);
    expect(verifyEntry(entry)).toBeUndefined();
  }, 90_000);

  it('two `tmgt models build` processes on an empty cache: one model entry, verified', async () => {
    const cache = join(dir, 'tmgt-cache');
    const env = { ...process.env, TMGT_CACHE_DIR: cache };
    const build = () => execa(process.execPath, [BIN, 'models', 'build', 'llama-tiny'], { env, reject: false, timeout: 120_000 });
    const [a, b] = await Promise.all([build(), build()]);
    expect([a.exitCode, b.exitCode], `${a.stderr}\n${b.stderr}`).toEqual([0, 0]);
    expect(a.stdout.trim()).toBe(b.stdout.trim());
    const entries = readdirSync(join(cache, 'models'));
    expect(entries).toHaveLength(1);
    expect(verifyEntry(join(cache, 'models', entries[0] ?? ''))).toBeUndefined();
    appendFileSync(join(cache, 'models', entries[0] ?? '', 'config.json'), ' ');
    const c = await execa(process.execPath, [BIN, 'models', 'build', 'llama-tiny'], { env, reject: false, timeout: 120_000 });
    expect(c.exitCode).toBe(0);
    expect(c.stderr).toMatch(/cache entry models\/llama-tiny-[0-9a-f]+ is corrupt: config\.json has \d+ bytes/);
    expect(verifyEntry(join(cache, 'models', entries[0] ?? ''))).toBeUndefined();
  }, 240_000);
});
