import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertPathSafeName, type CommandConverter } from './converters/adapter.js';
import { errorMessage, UsageError } from './errors.js';

/** `tmgt.config.ts`: external converters and the default matrix. Typed with `defineConfig`. */
export interface TmgtConfig {
  converters?: CommandConverter[];
  matrix?: { models?: string[]; targets?: string[]; converter?: string };
}

/** Identity, for typing a config file's default export. */
export function defineConfig(config: TmgtConfig): TmgtConfig {
  return config;
}

/** The package's root (holding package.json): one level above src/ when run from source, above dist/ when compiled. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url)).replace(/\/$/, '');

/** The package's own config (this repository's default matrix). Read only when the discovered config is this file. */
export const DEFAULT_CONFIG_PATH = join(PACKAGE_ROOT, 'tmgt.config.ts');

/** Config file names, in the order vitest looks for its own (TypeScript first). */
export const CONFIG_NAMES = ['tmgt.config.ts', 'tmgt.config.mts', 'tmgt.config.js', 'tmgt.config.mjs'] as const;

/** Converter ids resolved in code (src/converters/registry.ts), never by config. */
const BUILTIN_IDS = ['reference', 'llama.cpp'] as const;

const TMGT_BIN = join(PACKAGE_ROOT, 'bin', 'tmgt.js');

/**
 * The command converters the package ships: available in every project, whatever its config says (this repository's
 * tmgt.config.ts included); a config's own entries are merged with these.
 */
export const PACKAGE_CONVERTERS: readonly CommandConverter[] = [
  {
    id: 'command:reference',
    description: 'the reference converter run through the command adapter (must match the built-in path exactly)',
    argv: ['node', TMGT_BIN, 'convert', '--model', '{source}', '--target', 'gguf/{type}', '--out', '{out}'],
    format: 'gguf',
    types: { 'gguf/f32': 'f32', 'gguf/q8_0': 'q8_0' },
    timeoutMs: 120_000,
  },
  {
    id: 'apr',
    description: "aprender's `apr import` (HF dir → APR v2), when `apr` is on PATH",
    argv: ['apr', 'import', '{source}', '--quantize', '{type}', '-o', '{out}'],
    format: 'apr',
    types: { 'apr/int8': 'int8', 'apr/int4': 'int4' },
    timeoutMs: 600_000,
  },
  {
    id: 'llama-quantize',
    description: "llama.cpp's llama-quantize on the reference converter's f32 GGUF, when it is on PATH",
    argv: ['llama-quantize', '{source}', '{out}', '{type}'],
    format: 'gguf',
    source: 'reference-gguf-f32',
    types: {
      'gguf/q8_0': 'Q8_0',
      'gguf/q4_0': 'Q4_0',
      'gguf/q4_1': 'Q4_1',
      'gguf/q5_0': 'Q5_0',
      'gguf/q5_1': 'Q5_1',
      'gguf/q4_k': 'Q4_K_M',
      'gguf/q6_k': 'Q6_K',
      'gguf/f16': 'F16',
      'gguf/bf16': 'BF16',
    },
    keepsHighPrecision: ['_norm\\.weight$', '\\.bias$', '^position_embd\\.weight$'],
    timeoutMs: 600_000,
  },
];

/**
 * The config file that applies in `cwd`: the first `tmgt.config.{ts,mts,js,mjs}` in `cwd`, then in each parent up to
 * the repository root (the first directory holding `.git`) or the filesystem root, the way vitest and eslint look.
 */
export function findConfigFile(cwd: string = process.cwd()): string | undefined {
  for (let dir = resolve(cwd); ; ) {
    for (const name of CONFIG_NAMES) {
      const file = join(dir, name);
      if (existsSync(file) && statSync(file).isFile()) return file;
    }
    const parent = dirname(dir);
    if (existsSync(join(dir, '.git')) || parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Import a config module. A TypeScript config needs a loader when tmgt runs compiled (no tsx registered): tsx is a
 * dependency, registered on demand, so `tmgt init`'s tmgt.config.ts works in a project with no TypeScript set up.
 */
async function importConfig(file: string): Promise<unknown> {
  if (/\.m?ts$/.test(file) && !import.meta.url.endsWith('.ts')) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  // a module namespace object; its default export is checked by validate()
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  return mod.default;
}

function validate(file: string, config: unknown): TmgtConfig {
  if (typeof config !== 'object' || config === null) {
    throw new UsageError(`config ${file} has no default export object (use export default defineConfig({...}))`);
  }
  const c = config as TmgtConfig; // shape checked entry by entry below
  if (c.converters !== undefined && !Array.isArray(c.converters)) throw new UsageError(`config ${file}: 'converters' must be an array`);
  for (const conv of c.converters ?? []) {
    if (typeof conv.id !== 'string' || !Array.isArray(conv.argv) || conv.argv.length === 0) {
      throw new UsageError(`config ${file}: converter entries need an id and a non-empty argv`);
    }
    // The id becomes part of artifact paths: refuse '..', separators and absolute paths at load, not mid-run.
    assertPathSafeName('converter id', conv.id);
    if (BUILTIN_IDS.some((id) => id === conv.id) || conv.id.startsWith('mutant:')) {
      throw new UsageError(
        `config ${file}: converter id '${conv.id}' is reserved for the built-in converter '${conv.id}' (src/converters/registry.ts)`,
      );
    }
  }
  return c;
}

/** Where a loaded config came from (undefined: none found, the package's converters only). */
export interface LoadedConfig extends TmgtConfig {
  /** The file read, if any. */
  configFile?: string;
}

/**
 * Load the config: `path` (--config) when given, else the one found from the cwd upwards. The package's own converters
 * are always available: when the config is another file, its entries are merged with them, and an entry reusing a
 * package or built-in id is an error naming both.
 */
export async function loadConfig(path?: string, cwd: string = process.cwd()): Promise<LoadedConfig> {
  const file = path === undefined ? findConfigFile(cwd) : resolve(cwd, path);
  if (file === undefined) return { converters: [...PACKAGE_CONVERTERS] };
  if (!existsSync(file)) throw new UsageError(`config file ${file} does not exist`);
  let raw: unknown;
  try {
    raw = await importConfig(file);
  } catch (e) {
    throw new UsageError(`cannot load config ${file}: ${errorMessage(e)}`);
  }
  const config = validate(file, raw);
  const seen = new Set<string>();
  for (const conv of config.converters ?? []) {
    if (seen.has(conv.id)) throw new UsageError(`config ${file}: converter id '${conv.id}' is declared twice`);
    seen.add(conv.id);
    const pkg = PACKAGE_CONVERTERS.find((p) => p.id === conv.id);
    if (pkg !== undefined) {
      throw new UsageError(
        `config ${file}: converter '${conv.id}' (${conv.argv.join(' ')}) reuses the id of the package's built-in converter '${pkg.id}' ` +
          `(${pkg.description ?? pkg.argv.join(' ')}); give it another id`,
      );
    }
  }
  return { ...config, converters: [...PACKAGE_CONVERTERS, ...(config.converters ?? [])], configFile: file };
}
