import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The installed package's root (src/.. or dist/..): the cache is never placed inside it when it is an installed copy. */
const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url)).replace(/\/$/, '');

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Where built models, oracle records and other derived artifacts live: `TMGT_CACHE_DIR` when set and not empty; else
 * `node_modules/.cache/tmgt` of the nearest node_modules at or above `cwd` (the convention of babel, eslint, vite);
 * else `$XDG_CACHE_HOME/tmgt` or `~/.cache/tmgt`. An installed copy of the package (one inside a node_modules) is
 * never written to: a global or read-only install cannot hold a cache and `npm ci` would wipe it.
 */
export function cacheRoot(cwd: string = process.cwd()): string {
  const env = process.env['TMGT_CACHE_DIR'];
  if (env !== undefined && env !== '') return resolve(env);
  const installed = PACKAGE_ROOT.split(sep).includes('node_modules');
  for (let dir = resolve(cwd); ; ) {
    const nm = join(dir, 'node_modules');
    if (existsSync(nm) && statSync(nm).isDirectory() && !(installed && isInside(PACKAGE_ROOT, nm))) return join(nm, '.cache', 'tmgt');
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'tmgt');
}

/** sha256 of bytes or a string, hex. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a file, read 8 MiB at a time (model files reach gigabytes). */
export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const buf = new Uint8Array(8 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

const MANIFEST = '.manifest.json';

/** One file of an entry as the manifest records it. Older manifests hold the hash alone. */
type ManifestFile = { sha256: string; bytes: number } | string;

/** Why an entry cannot be used, or undefined when every file matches its manifest. */
export function verifyEntry(dir: string): string | undefined {
  let manifest: Record<string, ManifestFile>;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Record<string, ManifestFile>; // our own file; checked below
  } catch (e) {
    return `its manifest is unreadable (${e instanceof Error ? e.message : String(e)})`;
  }
  if (typeof manifest !== 'object' || manifest === null || Object.keys(manifest).length === 0) return 'its manifest is empty';
  for (const [f, want] of Object.entries(manifest)) {
    const path = join(dir, f);
    if (!existsSync(path)) return `${f} is missing`;
    const hash = typeof want === 'string' ? want : want.sha256;
    if (typeof want !== 'string') {
      const bytes = statSync(path).size;
      if (bytes !== want.bytes) return `${f} has ${bytes} bytes, the manifest ${want.bytes} (truncated or overwritten)`;
    }
    if (sha256File(path) !== hash) return `${f} does not match its sha256`;
  }
  return undefined;
}

// An entry verified once in this process (no file's size or mtime changed since) is not hashed again: a check run
// reads the same model and oracle entries once per cell.
const verified = new Map<string, string>();
const reported = new Set<string>();

/** Sizes and mtimes of every file of an entry: a file rewritten since it was verified is hashed again. */
function stamp(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((f) => {
      const s = statSync(join(dir, f));
      return `${f}:${s.size}:${s.mtimeMs}`;
    })
    .join('|');
}

function isVerified(dir: string): boolean {
  try {
    if (verified.get(dir) === stamp(dir)) return true;
  } catch {
    return false;
  }
  return false;
}

/** How long a cache lock may be held before another process takes it over (the longest build: shape-faithful models). */
const LOCK_STALE_MS = 30 * 60_000;
const LOCK_POLL_MS = 50;

function ownerAlive(lock: string): boolean {
  try {
    const pid = Number(readFileSync(join(lock, 'owner'), 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return Date.now() - statSync(lock).mtimeMs < 10_000; // owner not written yet
    process.kill(pid, 0);
    return Date.now() - statSync(lock).mtimeMs < LOCK_STALE_MS;
  } catch (e) {
    // EPERM: the process exists under another user; anything else (ESRCH, the lock gone) means no live owner.
    return typeof e === 'object' && e !== null && 'code' in e && e.code === 'EPERM';
  }
}

/** Take `<entry>.lock` (mkdir is atomic): one process builds or repairs an entry, the others wait and then use it. */
async function withLock<T>(final: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${final}.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if (!(typeof e === 'object' && e !== null && 'code' in e && e.code === 'EEXIST')) throw e;
      if (!ownerAlive(lock)) {
        // A crashed owner: move its lock aside atomically so two waiters do not both remove a fresh one.
        const aside = `${lock}.stale-${process.pid}-${Date.now()}`;
        try {
          renameSync(lock, aside);
          rmSync(aside, { recursive: true, force: true });
        } catch {
          // another waiter took it over first
        }
        continue;
      }
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * A content-addressed cache entry: `<root>/<kind>/<key>/`. Every file of an entry is verified against its manifest
 * (size and sha256) before the entry is used; a corrupt or truncated entry is reported once on stderr and rebuilt.
 * Built into a temp dir, hashed into a manifest, then renamed into place, so a reader never sees a half-written entry;
 * builds and repairs of one key are serialised across processes by a lock, so two `tmgt check` runs sharing a cache
 * build it once and never remove an entry the other is reading.
 */
export async function cachedDir(kind: string, key: string, build: (dir: string) => Promise<void> | void): Promise<string> {
  const final = join(cacheRoot(), kind, key);
  if (isVerified(final)) return final;
  if (existsSync(final) && verifyEntry(final) === undefined) {
    verified.set(final, stamp(final));
    return final;
  }
  return withLock(final, async () => {
    // Another process may have built or repaired it while this one waited.
    if (existsSync(final)) {
      const problem = verifyEntry(final);
      if (problem === undefined) {
        verified.set(final, stamp(final));
        return final;
      }
      if (!reported.has(final)) {
        reported.add(final);
        process.stderr.write(`tmgt: cache entry ${kind}/${key} is corrupt: ${problem}; rebuilding it\n`);
      }
      const aside = `${final}.corrupt-${process.pid}-${Date.now()}`;
      renameSync(final, aside);
      rmSync(aside, { recursive: true, force: true });
    }
    const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
    mkdirSync(tmp, { recursive: true });
    try {
      await build(tmp);
      const manifest: Record<string, ManifestFile> = {};
      for (const f of readdirSync(tmp).sort()) {
        const s = statSync(join(tmp, f));
        if (s.isFile()) manifest[f] = { sha256: sha256File(join(tmp, f)), bytes: s.size };
      }
      writeFileSync(join(tmp, MANIFEST), JSON.stringify(manifest, null, 1));
      renameSync(tmp, final);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    verified.set(final, stamp(final));
    return final;
  });
}

/** The cache's kinds as `tmgt cache clean --kind` names them: built checkpoints, oracle records, everything else. */
export const CACHE_KINDS = ['models', 'oracles', 'artifacts'] as const;
/** One of CACHE_KINDS. */
export type CacheKind = (typeof CACHE_KINDS)[number];

/** The kind a top-level cache directory belongs to. */
export function kindOf(dir: string): CacheKind {
  return dir === 'models' || dir === 'oracles' ? dir : 'artifacts';
}

function sizeOf(path: string): number {
  const s = statSync(path, { throwIfNoEntry: false });
  if (s === undefined) return 0;
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0);
}

/** Size per kind and entry count of the cache at `root`. */
export interface CacheInfo {
  /** The cache directory. */
  root: string;
  /** Bytes and entries per kind. */
  kinds: Record<CacheKind, { bytes: number; entries: number }>;
}

/** Measure the cache at `root` (default: cacheRoot()). */
export function cacheInfo(root: string = cacheRoot()): CacheInfo {
  const kinds: CacheInfo['kinds'] = {
    models: { bytes: 0, entries: 0 },
    oracles: { bytes: 0, entries: 0 },
    artifacts: { bytes: 0, entries: 0 },
  };
  if (existsSync(root)) {
    for (const d of readdirSync(root)) {
      const k = kinds[kindOf(d)];
      const path = join(root, d);
      k.bytes += sizeOf(path);
      k.entries += statSync(path).isDirectory() ? readdirSync(path).filter((e) => !/\.(tmp|lock|corrupt)-?/.test(e)).length : 1;
    }
  }
  return { root, kinds };
}

/** Remove the cache at `root`, or only one kind of it. Returns the bytes freed. */
export function cleanCache(kind?: CacheKind, root: string = cacheRoot()): number {
  if (!existsSync(root)) return 0;
  let freed = 0;
  for (const d of readdirSync(root)) {
    if (kind !== undefined && kindOf(d) !== kind) continue;
    const path = join(root, d);
    freed += sizeOf(path);
    rmSync(path, { recursive: true, force: true });
  }
  return freed;
}
