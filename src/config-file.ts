import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CommandConverter } from './converters/adapter.js';
import { UsageError } from './errors.js';

/** `tmgt.config.ts`: external converters and the default matrix. Typed with `defineConfig`. */
export interface TmgtConfig {
  converters?: CommandConverter[];
  matrix?: { models?: string[]; targets?: string[]; converter?: string };
}

export function defineConfig(config: TmgtConfig): TmgtConfig {
  return config;
}

export const DEFAULT_CONFIG_PATH = new URL('../tmgt.config.ts', import.meta.url).pathname;

/** Load a config file (TypeScript or JavaScript, default export). A missing default file is an empty config. */
export async function loadConfig(path?: string): Promise<TmgtConfig> {
  const file = resolve(path ?? DEFAULT_CONFIG_PATH);
  if (!existsSync(file)) {
    if (path !== undefined) throw new UsageError(`config file ${file} does not exist`);
    return {};
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    throw new UsageError(`cannot load config ${file}: ${(e as Error).message}`);
  }
  const config = mod.default;
  if (typeof config !== 'object' || config === null) throw new UsageError(`config ${file} has no default export object (use export default defineConfig({...}))`);
  const c = config as TmgtConfig;
  for (const conv of c.converters ?? []) {
    if (typeof conv.id !== 'string' || !Array.isArray(conv.argv) || conv.argv.length === 0) throw new UsageError(`config ${file}: converter entries need an id and a non-empty argv`);
    if (conv.id === 'reference' || conv.id.startsWith('mutant:')) throw new UsageError(`config ${file}: converter id '${conv.id}' is reserved for the built-in converters`);
  }
  return c;
}
