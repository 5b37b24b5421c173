/** `tmgt cache info|clean`: where the cache is and what it holds, and removing it (or one kind of it). */
import { parseArgs } from 'node:util';
import { CACHE_KINDS, cacheInfo, cleanCache } from '../cache.js';
import { UsageError } from '../errors.js';

/** Usage text of `tmgt cache`. */
export const CACHE_USAGE = `tmgt cache info [--json]
tmgt cache clean [--kind ${CACHE_KINDS.join('|')}]

The cache holds built zoo checkpoints (models), onnxruntime oracle records (oracles) and other derived files
(artifacts). It lives in node_modules/.cache/tmgt of the nearest node_modules above the current directory, else in
$XDG_CACHE_HOME/tmgt (~/.cache/tmgt); TMGT_CACHE_DIR overrides (empty: the default). Every entry is verified by
sha256 when read and rebuilt when corrupt, so cleaning is never needed for correctness, only for space.`;

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Run `tmgt cache …`; returns the exit code. */
export async function cacheCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'info') {
    const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } }, strict: true });
    const info = cacheInfo();
    if (values.json) {
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      return 0;
    }
    const total = CACHE_KINDS.reduce((n, k) => n + info.kinds[k].bytes, 0);
    process.stdout.write(`cache: ${info.root}\n`);
    for (const k of CACHE_KINDS)
      process.stdout.write(`  ${k.padEnd(9)} ${mib(info.kinds[k].bytes).padStart(12)}  ${info.kinds[k].entries} entries\n`);
    process.stdout.write(`  ${'total'.padEnd(9)} ${mib(total).padStart(12)}\n`);
    return 0;
  }
  if (sub === 'clean') {
    const { values } = parseArgs({ args: rest, options: { kind: { type: 'string' } }, strict: true });
    const kind = values.kind === undefined ? undefined : CACHE_KINDS.find((k) => k === values.kind);
    if (values.kind !== undefined && kind === undefined) {
      throw new UsageError(`unknown cache kind '${values.kind}' (known: ${CACHE_KINDS.join(', ')})`);
    }
    const root = cacheInfo().root;
    const freed = cleanCache(kind, root);
    process.stdout.write(`cache: removed ${kind ?? 'everything'} from ${root} (${mib(freed)})\n`);
    return 0;
  }
  throw new UsageError(`usage: ${CACHE_USAGE.split('\n')[0]} | tmgt cache clean [--kind …]`);
}
