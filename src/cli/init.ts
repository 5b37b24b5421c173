/**
 * `tmgt init`: set a converter's own repository up for parity checks — a commented tmgt.config.ts (.mts in a CommonJS
 * TypeScript project, .mjs in a project without TypeScript) declaring the user's converter as a command converter, and a GitHub workflow running
 * `npx tmgt check` and uploading the reports. Nothing is overwritten without --force.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TRAINED_MODELS } from '../config.js';
import { CONFIG_NAMES, findConfigFile } from '../config-file.js';
import { assertPathSafeName } from '../converters/adapter.js';
import { isTargetId, MODEL_FORMATS, TARGET_IDS, type ModelFormat } from '../converters/targets.js';
import { UsageError } from '../errors.js';

/** Usage text of `tmgt init`. */
export const INIT_USAGE = `tmgt init --converter-cmd "my-conv --in {source} --out {out} --type {type}"
          [--format gguf|apr|safetensors] [--targets gguf/f32,gguf/q8_0] [--id my-conv] [--force]

Writes tmgt.config.ts (.mts in a CommonJS TypeScript project, .mjs without TypeScript) declaring your converter, and
.github/workflows/parity.yml running 'npx tmgt check' and uploading reports/. Placeholders in the command:
{source} the HF checkpoint directory tmgt builds, {out} the file to write, {type} your name for the target type
(the part after the slash of a target, e.g. q8_0), {workdir} a scratch directory. The command is split into
arguments here (quotes group words); it never runs through a shell. Existing files are kept unless --force.`;

/** Targets offered by default, per format: the lossless one and the common 8-bit one. */
const DEFAULT_TARGETS: Record<ModelFormat, readonly string[]> = {
  gguf: ['gguf/f32', 'gguf/q8_0'],
  apr: ['apr/f32', 'apr/int8'],
  safetensors: ['safetensors/f16', 'safetensors/bf16'],
};

// Interpreters: the converter's name is the script they run, not the interpreter.
const INTERPRETERS = new Set(['node', 'python', 'python3', 'npx', 'uv', 'bash', 'sh', 'deno', 'bun', 'cargo']);

/** Split a command line into arguments: whitespace separates, single or double quotes group, backslash escapes. */
export function splitCommand(cmd: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < cmd.length; i++) {
    const ch = cmd.charAt(i);
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < cmd.length) cur += cmd.charAt(++i);
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < cmd.length) {
      cur += cmd.charAt(++i);
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote !== undefined) throw new UsageError(`--converter-cmd: unterminated ${quote} quote in ${JSON.stringify(cmd)}`);
  if (has) out.push(cur);
  return out;
}

/** A converter id from its command: the program's (or the interpreted script's) base name, path-safe. */
export function converterIdFor(argv: readonly string[]): string {
  const prog = argv[0] ?? 'converter';
  const named = INTERPRETERS.has(basename(prog)) && argv[1] !== undefined && !argv[1].startsWith('-') ? argv[1] : prog;
  const id = basename(named)
    .replace(/\.(m?[jt]s|py|sh)$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  // 'reference' and 'llama.cpp' name built-in converters.
  return id === '' || id === 'reference' || id === 'llama.cpp' ? 'my-converter' : id;
}

/**
 * The config's file name: TypeScript when the project uses it (a tsconfig.json, or typescript among its package.json
 * dependencies), else plain ESM. A `.ts` file is a CommonJS module unless package.json says `"type": "module"`, and the
 * config is ESM (export default): such a project gets `.mts`.
 */
export function configNameFor(dir: string): (typeof CONFIG_NAMES)[number] {
  let pkg: Record<string, unknown> = {};
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>; // fields checked below
  } catch {
    // no package.json (or an unreadable one): no dependencies, CommonJS by Node's default
  }
  const hasTypeScript =
    existsSync(join(dir, 'tsconfig.json')) ||
    ['dependencies', 'devDependencies'].some((f) => {
      const deps = pkg[f];
      return typeof deps === 'object' && deps !== null && 'typescript' in deps;
    });
  if (!hasTypeScript) return 'tmgt.config.mjs';
  return pkg['type'] === 'module' ? 'tmgt.config.ts' : 'tmgt.config.mts';
}

const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The text of the config file. */
export function renderConfig(opts: {
  id: string;
  argv: readonly string[];
  format: ModelFormat;
  targets: readonly string[];
  typescript: boolean;
}): string {
  const types = opts.targets.map((t) => `${q(t)}: ${q(t.slice(t.indexOf('/') + 1))}`).join(', ');
  const head = [
    `// tmgt (tiny-model-ground-truth) configuration, written by \`tmgt init\`. \`npx tmgt check\` finds this file in this`,
    `// directory or any above it, builds the tiny model zoo and its onnxruntime oracles (nothing is downloaded), runs your`,
    `// converter on every model × target below, and judges every tensor and the logits of what it writes.`,
    `//`,
    `// argv placeholders, each passed as one argument (never through a shell):`,
    `//   {source}   an HF checkpoint directory: config.json, model.safetensors, tokenizer.json`,
    `//   {out}      the file your converter must write`,
    `//   {type}     your converter's name for the target's type (the value in \`types\` below)`,
    `//   {workdir}  a scratch directory`,
  ];
  const body = [
    `  converters: [`,
    `    {`,
    `      id: ${q(opts.id)},`,
    `      argv: [${opts.argv.map(q).join(', ')}],`,
    `      // The format of the file it writes: gguf | apr | safetensors.`,
    `      format: ${q(opts.format)},`,
    `      // Our target → the {type} your converter is given. Targets not listed are skipped for this converter.`,
    `      types: { ${types} },`,
    `      // Tensors your converter promises to keep in high precision (regexes over the file's tensor names); the`,
    `      // policy check (F-LAYOUT-CONTRACT-007) holds it to them.`,
    `      // keepsHighPrecision: ['_norm\\\\.weight$', '\\\\.bias$'],`,
    `      timeoutMs: 300_000,`,
    `    },`,
    `  ],`,
    `  // What a bare \`npx tmgt check\` runs. Flags override: --models, --targets, --converter.`,
    `  matrix: {`,
    `    converter: ${q(opts.id)},`,
    `    models: [${TRAINED_MODELS.map(q).join(', ')}],`,
    `    targets: [${opts.targets.map(q).join(', ')}],`,
    `  },`,
  ];
  if (opts.typescript) {
    return [
      ...head,
      `import type { TmgtConfig } from 'tiny-model-ground-truth';`,
      ``,
      `export default {`,
      ...body,
      `} satisfies TmgtConfig;`,
      ``,
    ].join('\n');
  }
  return [...head, ``, `/** @type {import('tiny-model-ground-truth').TmgtConfig} */`, `export default {`, ...body, `};`, ``].join('\n');
}

/** The GitHub Actions workflow. */
export function renderWorkflow(): string {
  return `# Parity of this repository's converter against tiny-model-ground-truth's oracles (written by \`tmgt init\`).
name: parity
on: [push, pull_request]
jobs:
  parity:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
          cache: npm
      - run: npm ci
      # Build or install your converter here if it is not on PATH yet.
      # Restored after npm ci (which empties node_modules): built models and oracle records, keyed by tmgt's version.
      - uses: actions/cache@v4
        with:
          path: node_modules/.cache/tmgt
          key: tmgt-\${{ runner.os }}-\${{ hashFiles('package-lock.json') }}
      # Exit 1 on any failing check; one GitHub annotation per failing verdict.
      - run: npx tmgt check
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: parity-report
          path: reports/
`;
}

/** Run `tmgt init`; returns the exit code. */
export async function initCommand(args: string[], cwd: string = process.cwd()): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'converter-cmd': { type: 'string' },
      format: { type: 'string', default: 'gguf' },
      targets: { type: 'string' },
      id: { type: 'string' },
      force: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const cmd = values['converter-cmd'];
  if (cmd === undefined || cmd.trim() === '')
    throw new UsageError(`tmgt init needs --converter-cmd "my-conv --in {source} --out {out} --type {type}"`);
  const argv = splitCommand(cmd);
  if (!argv.some((a) => a.includes('{out}')))
    throw new UsageError(`--converter-cmd must contain {out} (the file the converter writes): ${JSON.stringify(cmd)}`);
  if (!argv.some((a) => a.includes('{source}')))
    throw new UsageError(`--converter-cmd must contain {source} (the checkpoint directory it reads): ${JSON.stringify(cmd)}`);
  const fmt = MODEL_FORMATS.find((f) => f === values.format);
  if (fmt === undefined) throw new UsageError(`unknown --format '${values.format}' (known: ${MODEL_FORMATS.join(', ')})`);
  const targets =
    values.targets === undefined
      ? DEFAULT_TARGETS[fmt]
      : values.targets
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '');
  for (const t of targets) {
    if (!isTargetId(t)) throw new UsageError(`unknown target '${t}' (known: ${TARGET_IDS.join(', ')})`);
    if (!t.startsWith(`${fmt}/`)) throw new UsageError(`target '${t}' is not a ${fmt} target (--format ${fmt})`);
  }
  if (targets.length === 0) throw new UsageError('--targets lists no target');
  const id = values.id ?? converterIdFor(argv);
  assertPathSafeName('converter id', id);

  const dir = resolve(cwd);
  const name = configNameFor(dir);
  const typescript = name !== 'tmgt.config.mjs';
  const configFile = join(dir, name);
  const workflowFile = join(dir, '.github', 'workflows', 'parity.yml');
  // Any config in this directory would compete with the new one (the first name found wins), not only the same name.
  const existing = [...CONFIG_NAMES.map((n) => join(dir, n)), workflowFile].filter((f) => existsSync(f));
  if (existing.length > 0 && !values.force) {
    throw new UsageError(
      `${existing.map((f) => relative(dir, f)).join(', ')} already exist${existing.length === 1 ? 's' : ''}; --force overwrites`,
    );
  }
  const above = findConfigFile(dirname(dir));
  // With --force, another config name left here would be found before (or instead of) the new file.
  for (const f of existing) if (f !== workflowFile && f !== configFile) rmSync(f);
  writeFileSync(configFile, renderConfig({ id, argv, format: fmt, targets, typescript }));
  mkdirSync(dirname(workflowFile), { recursive: true });
  writeFileSync(workflowFile, renderWorkflow());
  process.stdout.write(
    `wrote ${relative(dir, configFile)} (converter '${id}', ${targets.join(', ')}) and ${relative(dir, workflowFile)}\n`,
  );
  if (above !== undefined && existsSync(above)) process.stdout.write(`note: ${above} is shadowed by the new config in this directory\n`);
  process.stdout.write(`next: npx tmgt check\n`);
  return 0;
}
