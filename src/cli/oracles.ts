/** `tmgt oracles pin [MODEL...]`: re-pin oracles/manifest.json, the drift baseline. */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { defaultPinnedModels, ORACLE_MANIFEST_PATH, pinOracles, readOracleManifest, writeOracleManifest } from '../oracle/manifest.js';
import { findModelSpec } from '../zoo/specs.js';

/**
 * With no names, pins every tiny zoo model and drops entries of models no longer in that set; with names, re-pins
 * those and keeps the other entries.
 */
async function pin(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, options: {}, strict: true, allowPositionals: true });
  for (const name of positionals) findModelSpec(name); // unknown names fail before any work
  const names = positionals.length > 0 ? [...new Set(positionals)] : defaultPinnedModels();
  if (names.length === 0) throw new UsageError('no tiny zoo models to pin');
  const base = positionals.length > 0 ? readOracleManifest() : undefined;
  const manifest = await pinOracles(names, { ...(base !== undefined ? { base } : {}), log: (line) => process.stdout.write(line + '\n') });
  const bytes = writeOracleManifest(manifest);
  process.stdout.write(
    `wrote ${relative(process.cwd(), ORACLE_MANIFEST_PATH) || ORACLE_MANIFEST_PATH} (${Object.keys(manifest.models).length} models, ${bytes} bytes)\n`,
  );
  return 0;
}

/** `tmgt oracles <sub>`. */
export async function oraclesCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'pin') throw new UsageError(`unknown oracles subcommand '${sub ?? ''}' (pin)`);
  return pin(rest);
}
