import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where built models, oracle records and other derived artifacts live (gitignored). */
export function cacheRoot(): string {
  const dir = process.env['TMGT_CACHE_DIR'];
  return dir !== undefined && dir !== '' ? dir : join(new URL('../', import.meta.url).pathname, '.cache');
}

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

function verify(dir: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Record<string, string>;
    return Object.entries(manifest).every(([f, h]) => existsSync(join(dir, f)) && sha256File(join(dir, f)) === h);
  } catch {
    return false;
  }
}

/**
 * A content-addressed cache entry: `<root>/<kind>/<key>/`. Built into a temp dir, hashed into a manifest,
 * then renamed into place, so a reader never sees a half-written entry; an entry whose files no longer
 * match their manifest is rebuilt. Two processes racing build twice and one rename wins.
 */
export async function cachedDir(kind: string, key: string, build: (dir: string) => Promise<void> | void): Promise<string> {
  const final = join(cacheRoot(), kind, key);
  if (existsSync(final)) {
    if (verify(final)) return final;
    rmSync(final, { recursive: true, force: true });
  }
  const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    await build(tmp);
    const manifest: Record<string, string> = {};
    for (const f of readdirSync(tmp).sort()) if (statSync(join(tmp, f)).isFile()) manifest[f] = sha256File(join(tmp, f));
    writeFileSync(join(tmp, MANIFEST), JSON.stringify(manifest, null, 1));
    try {
      renameSync(tmp, final);
    } catch (e) {
      if (!existsSync(final)) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return final;
}
