/**
 * The mutant-kill suite: every mutant of the catalogue (src/converters/mutants.ts), on every tiny model
 * whose architecture it applies to, at its own target, must be killed with its expected code(s) — the
 * rule `tmgt mutants` applies (src/cli/mutants.ts `judgeKill`: a failing verdict, and every expected
 * code among the failing codes). Plus one real `tmgt mutants --json` run.
 *
 * Cost: a cell is a real `tmgt convert` subprocess plus every suite in-process. The in-process cells run
 * every suite except cross-runtime, which starts llama.cpp in a child process (~2 s a GGUF cell) and
 * produces no code any mutant expects; dropping a suite can only remove codes, so a cell killed without
 * it is killed with it (`tmgt mutants` itself runs every suite). The mutants of the subprocess run are
 * judged from its JSON instead of being run twice.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { judgeKill, mutantCells, type MutantKill, type MutantsReport } from '../src/cli/mutants.js';
import { CODES, type SuiteName, type VerdictCode } from '../src/checks/codes.js';
import { evidenceProblems } from '../src/contracts/verdicts.js';
import { DEFAULT_MATRIX, DEFAULT_PROMPTS } from '../src/config.js';
import { findMutant, MUTANTS, mutantArchs } from '../src/converters/mutants.js';
import { isTargetId, parseTarget } from '../src/converters/targets.js';
import { checkFile } from '../src/checks/file.js';
import { runConverter } from '../src/converters/adapter.js';
import { aprTensorFromF32, encodeApr } from '../src/formats/apr/writer.js';
import { BufferByteSource } from '../src/formats/byte-source.js';
import { readModelFile } from '../src/formats/read-model.js';
import { addDriftOrdering, ALL_SUITES, runCell, type CellResult } from '../src/matrix/run.js';
import { buildModel } from '../src/zoo/build.js';
import { findModelSpec } from '../src/zoo/specs.js';
import { REPO_ROOT } from '../src/zoo/specs.js';

const workDir = mkdtempSync(join(tmpdir(), 'tmgt-mutant-kill-'));

/** Every code a test in this file produced from a real run (cells, files, converters). */
const produced = new Set<VerdictCode>();
/** Evidence that does not hold what its code's kind requires (contracts/verdicts.ts EVIDENCE_KIND), from every real cell. */
const evidenceIssues = new Set<string>();
const record = (r: CellResult): CellResult => {
  for (const c of r.checks) {
    for (const v of c.verdicts) {
      produced.add(v.code);
      for (const p of evidenceProblems(v)) evidenceIssues.add(p);
    }
  }
  return r;
};

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
  // The catalogue contract: every code in src/checks/codes.ts is produced by at least one test here.
  const missing = Object.keys(CODES).filter((c) => !produced.has(c as VerdictCode));
  expect(missing, `catalogue codes no test produced: ${missing.join(', ')}`).toEqual([]);
  // Every verdict's evidence names expected/got, or metric/got/bound/minPassingBound, as its code's kind says.
  expect([...evidenceIssues]).toEqual([]);
});

/** The mutants the `tmgt mutants` subprocess run covers (judged from its JSON, not run again in-process). */
const CLI_MUTANTS = ['mutant:lm-head-zeros', 'mutant:drop-last-layer'] as const;

/** The seed six, whose ids and expected codes other code and reports rely on. */
const SEED: Record<string, VerdictCode[]> = {
  'mutant:lm-head-int8-as-f32': ['F-LAYOUT-CONTRACT-001'],
  'mutant:lm-head-zeros': ['F-DATA-QUALITY-001'],
  'mutant:drop-last-layer': ['F-LAYOUT-CONTRACT-006', 'F-RUNTIME-002'],
  'mutant:ffn-down-untransposed': ['F-LAYOUT-CONTRACT-002'],
  'mutant:bf16-bytes-as-f32': ['F-LAYOUT-CONTRACT-004'],
  'mutant:f16-overflow-norm': ['F-DATA-QUALITY-002', 'F-LOGITS-001'],
};

/** bug-catalogue.md §3 classes A–U and the mutants that carry each (every mutant is in at least one). */
const CLASSES: Record<string, readonly string[]> = {
  'A wrong element width': ['mutant:lm-head-int8-as-f32', 'mutant:bf16-bytes-as-f32', 'mutant:weights-int8-as-f32'],
  'B zeros / offset': ['mutant:lm-head-zeros', 'mutant:embedding-offset-shift', 'mutant:gpt2-c-attn-zeros'],
  'C quantize/skip policy': ['mutant:norms-quantized', 'mutant:lm-head-quantized'],
  'D name mapping': ['mutant:gpt2-names-unmapped'],
  'E hyperparameter metadata': ['mutant:gpt2-hidden-is-head-dim', 'mutant:embedding-length-missing', 'mutant:gpt2-llama-keys'],
  'F rms eps': ['mutant:rms-eps-swapped'],
  'G Q/K permute': ['mutant:qk-permute-skipped', 'mutant:q-permute-kv-heads'],
  'H RoPE NORM vs NEOX': ['mutant:qwen2-declared-llama', 'mutant:apr-rope-type-norm'],
  'I transpose missing/extra': ['mutant:ffn-down-untransposed', 'mutant:conv1d-untransposed', 'mutant:square-transposed'],
  'J fused qkv order': ['mutant:qkv-order-swapped'],
  'K biases dropped': ['mutant:qkv-bias-dropped'],
  'L tied/untied output': ['mutant:untied-output-dropped', 'mutant:lm-head-random'],
  'M tokenizer / BOS': [
    'mutant:bos-always-prepended',
    'mutant:duplicate-tokens',
    'mutant:gpt2-llama-keys',
    'mutant:spm-scores-dropped',
    'mutant:spm-scores-flat',
    'mutant:spm-byte-tokens-normal',
    'mutant:spm-bom-token-lost',
    'mutant:spm-model-gpt2',
    'mutant:bpe-pre-default',
    'mutant:bpe-merges-split-into-characters',
  ],
  'N f16 overflow': ['mutant:f16-overflow-norm'],
  'O bf16 rounding': ['mutant:bf16-truncated'],
  'P block-scale bugs': ['mutant:q8-scale-pow2', 'mutant:q8-scale-bf16', 'mutant:q4-nibble-swap', 'mutant:q4-scale-bf16-bits'],
  'Q alignment / offset': ['mutant:alignment-mismatch'],
  'R endianness': ['mutant:byteswapped'],
  'S silent no-op': ['mutant:quantize-no-op'],
  'T transform applied twice': ['mutant:qk-permuted-twice'],
  'U dropped layers': ['mutant:drop-last-layer', 'mutant:layers-truncated'],
};

/** What the failing verdicts of the tokenizer-family mutants must say (caught for the reason each exists). */
const MESSAGES: Record<string, RegExp> = {
  'mutant:spm-scores-dropped': /tokenizer\.ggml\.scores: missing/,
  // What LlamaHfVocab writes: llama.cpp then merges left to right.
  'mutant:spm-scores-flat': /token ids differ on \d+ of \d+ probe strings/,
  'mutant:spm-byte-tokens-normal': /256 id\(s\) typed unlike the source, e\.g\. id 3 "<0x00>": got 1 \(normal\), expected 6 \(byte\)/,
  'mutant:spm-bom-token-lost': /id 31759: got "", expected "\ufeff"/,
  'mutant:spm-model-gpt2': /tokenizer\.ggml\.model is "gpt2", expected "llama"/,
  'mutant:bpe-pre-default': /token ids differ on \d+ of \d+ probe strings \(tokenizer\.ggml\.pre 'default'/,
  'mutant:bpe-merges-split-into-characters': /tokenizer\.ggml\.merges: .*duplicated/,
};

/**
 * The transform F-FIDELITY-002 must name for the mutants whose kill is the transform search (classes G,
 * I, J, T): every F-FIDELITY-002 verdict of the cell names it, so the kill is for the reason the mutant exists.
 */
const TRANSFORMS: Record<string, RegExp> = {
  'mutant:qk-permute-skipped': /^no-permute$/,
  'mutant:q-permute-kv-heads': /^permute-q n_head=2$/,
  'mutant:qk-permuted-twice': /^permute-twice-[qk] n_head=(6|2)$/,
  'mutant:conv1d-untransposed': /^no-transpose$/,
  'mutant:square-transposed': /^transpose$/,
  'mutant:qkv-order-swapped': /^qkv-order v,k,q$/,
};

/** Every suite but cross-runtime, unless a mutant expects a cross-runtime code (none does today). */
function killSuites(expected: readonly VerdictCode[]): SuiteName[] {
  return expected.includes('F-CROSS-RUNTIME-001') ? [...ALL_SUITES] : ALL_SUITES.filter((s) => s !== 'cross-runtime');
}

/** A failure message that says what the cell did raise: its failing codes and one verdict per code. */
function explain(k: MutantKill, r?: CellResult): string {
  const lines = [
    `${k.mutant} × ${k.model} @ ${k.target}: expected ${k.expected.join(', ')}; got ${k.got.length ? k.got.join(', ') : 'no failing verdict'}${k.error ? `; error: ${k.error}` : ''}`,
  ];
  const seen = new Set<string>();
  for (const v of r?.checks.flatMap((c) => c.verdicts) ?? []) {
    if (v.status !== 'fail' || seen.has(v.code)) continue;
    seen.add(v.code);
    lines.push(`  ${v.code}${v.tensor ? ` ${v.tensor}` : ''}: ${v.message.slice(0, 200)}`);
  }
  return lines.join('\n');
}

describe('the mutant catalogue', () => {
  it('has at least 24 mutants with unique ids, known codes and targets, and archs within the zoo', () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(24);
    expect(new Set(MUTANTS.map((m) => m.id)).size).toBe(MUTANTS.length);
    for (const m of MUTANTS) {
      expect(m.id).toMatch(/^mutant:[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(m.description.length, m.id).toBeGreaterThan(20);
      expect(m.grounding.length, m.id).toBeGreaterThan(10);
      expect(m.expected.length, m.id).toBeGreaterThan(0);
      for (const c of m.expected) expect(Object.keys(CODES), m.id).toContain(c);
      expect(isTargetId(m.target), m.id).toBe(true);
      expect(mutantArchs(m).length, m.id).toBeGreaterThan(0);
      for (const a of mutantArchs(m)) expect(['llama', 'qwen2', 'gpt2'], m.id).toContain(a);
    }
  });

  it('keeps the seed six with their expected codes; the aprender pair at apr/int8 and apr/int4', () => {
    for (const [id, expected] of Object.entries(SEED)) expect(findMutant(id)?.expected, id).toEqual(expected);
    expect(findMutant('mutant:lm-head-int8-as-f32')?.target).toBe('apr/int8');
    expect(findMutant('mutant:lm-head-zeros')?.target).toBe('apr/int4');
  });

  it('covers every bug class A–U of bug-catalogue §3 with at least one mutant', () => {
    for (const [cls, ids] of Object.entries(CLASSES)) {
      expect(ids.length, cls).toBeGreaterThan(0);
      for (const id of ids) expect(findMutant(id), `${cls}: ${id}`).toBeDefined();
    }
    const classified = new Set(Object.values(CLASSES).flat());
    expect(MUTANTS.filter((m) => !classified.has(m.id)).map((m) => m.id)).toEqual([]);
  });

  it('every mutant applies to at least one tiny model', () => {
    const cells = mutantCells(MUTANTS);
    for (const m of MUTANTS)
      expect(
        cells.some((c) => c.mutant === m),
        m.id,
      ).toBe(true);
  });
});

describe('judgeKill: the kill rule of tmgt mutants', () => {
  const m = findMutant('mutant:drop-last-layer');
  if (!m) throw new Error('mutant:drop-last-layer is missing');
  const base = { converter: m.id, model: 'llama-tiny', target: m.target, engine: 'bundled', durationMs: 1 };
  const cell = (codes: VerdictCode[]): CellResult => ({
    ...base,
    status: 'done',
    checks: [
      {
        suite: 'layout',
        status: codes.length ? 'fail' : 'pass',
        verdicts: codes.map((code) => ({ code, status: 'fail' as const, message: code, evidence: { logTail: 'Error: boom' } })),
      },
    ],
  });
  it.each([
    {
      name: 'every expected code among the failing ones, extra codes fine: killed',
      codes: ['F-RUNTIME-002', 'F-LAYOUT-CONTRACT-006', 'F-FIDELITY-001'],
      killed: true,
      error: false,
    },
    { name: 'one expected code missing: survived', codes: ['F-LAYOUT-CONTRACT-006'], killed: false, error: false },
    { name: 'no failing verdict: survived', codes: [], killed: false, error: false },
    {
      name: 'the converter failed (the mutant was never applied): an error, not a kill',
      codes: ['F-RUNTIME-001', 'F-LAYOUT-CONTRACT-006', 'F-RUNTIME-002'],
      killed: false,
      error: true,
    },
  ] as const)('$name', ({ codes, killed, error }) => {
    const k = judgeKill(m, 'llama-tiny', cell([...codes]));
    expect(k.killed).toBe(killed);
    expect(k.error !== undefined).toBe(error);
    expect(k.got).toEqual([...new Set(codes)].sort());
    expect(k.expected).toEqual(m.expected);
  });
  it('a warn verdict does not count, and a skipped cell is an error', () => {
    const warned = cell([]);
    warned.checks[0]?.verdicts.push(
      { code: 'F-LAYOUT-CONTRACT-006', status: 'warn', message: 'w', evidence: {} },
      { code: 'F-RUNTIME-002', status: 'warn', message: 'w', evidence: {} },
    );
    expect(judgeKill(m, 'llama-tiny', warned)).toMatchObject({ killed: false, got: [] });
    expect(judgeKill(m, 'llama-tiny', { ...base, status: 'skipped', reason: 'not installed', checks: [] }).error).toMatch(
      /^skipped: not installed/,
    );
  });
});

describe('mutant kill suite: every mutant is killed on every architecture it applies to', () => {
  const cells = mutantCells(MUTANTS.filter((m) => !(CLI_MUTANTS as readonly string[]).includes(m.id)));
  for (const { mutant, model } of cells) {
    it(`${mutant.id} × ${model} @ ${mutant.target} → ${mutant.expected.join(', ')}`, async () => {
      const r = await runCell(
        { converter: mutant.id, model, target: parseTarget(mutant.target), engine: 'bundled' },
        {
          workDir,
          prompts: DEFAULT_PROMPTS,
          maxNewTokens: DEFAULT_MATRIX.maxNewTokens,
          converterTimeoutMs: DEFAULT_MATRIX.converterTimeoutMs,
          suites: killSuites(mutant.expected),
        },
      );
      record(r);
      const k = judgeKill(mutant, model, r);
      expect(k.error, explain(k, r)).toBeUndefined();
      expect(k.killed, explain(k, r)).toBe(true);
      const message = MESSAGES[mutant.id];
      if (message) {
        const all = r.checks.flatMap((c) => c.verdicts.filter((v) => v.status === 'fail').map((v) => v.message));
        expect(all.join('\n'), explain(k, r)).toMatch(message);
      }
      const transform = TRANSFORMS[mutant.id];
      if (transform) {
        const named = r.checks
          .flatMap((c) => c.verdicts)
          .filter((v) => v.code === 'F-FIDELITY-002')
          .map((v) => String(v.evidence['transform']));
        expect(named.length, explain(k, r)).toBeGreaterThan(0);
        for (const t of named) expect(t, explain(k, r)).toMatch(transform);
      }
    });
  }
});

describe('tmgt mutants (subprocess)', () => {
  it(`--json --mutants ${CLI_MUTANTS.join(',')}: exit 0, one killed cell per mutant × applicable model`, async () => {
    const r = await execa(process.execPath, [join(REPO_ROOT, 'bin/tmgt.js'), 'mutants', '--json', '--mutants', CLI_MUTANTS.join(',')], {
      cwd: REPO_ROOT,
      reject: false,
      timeout: 170_000,
    });
    expect(r.exitCode, `stderr:\n${r.stderr}`).toBe(0);
    const report = JSON.parse(r.stdout) as MutantsReport;
    expect(Object.keys(report)).toEqual(['mutants']);
    const want = mutantCells(CLI_MUTANTS.map((id) => findMutant(id)).filter((m) => m !== undefined));
    expect(report.mutants.map((k) => [k.mutant, k.model])).toEqual(want.map((c) => [c.mutant.id, c.model]));
    for (const k of report.mutants) {
      for (const c of k.got) produced.add(c);
      expect(Object.keys(k).sort(), k.mutant).toEqual(['expected', 'got', 'killed', 'model', 'mutant', 'target']);
      const m = findMutant(k.mutant);
      expect(k.target).toBe(m?.target);
      expect(k.expected).toEqual(m?.expected);
      expect(k.got).toEqual([...k.got].sort());
      for (const c of k.got) expect(Object.keys(CODES)).toContain(c);
      expect(k.killed, explain(k)).toBe(true);
      for (const c of k.expected) expect(k.got, explain(k)).toContain(c);
    }
    // Progress goes to stderr, one line per cell.
    expect(r.stderr).toMatch(new RegExp(`\\[${want.length}/${want.length}\\] `));
  });
});

describe('codes no mutant cell is built for', () => {
  const opts = {
    workDir,
    prompts: DEFAULT_PROMPTS,
    maxNewTokens: DEFAULT_MATRIX.maxNewTokens,
    converterTimeoutMs: 60_000,
    suites: ALL_SUITES,
  };

  it('F-RUNTIME-001: a converter that exits non-zero becomes a verdict of every planned claim, not a crash', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'tmgt-empty-'));
    // The real `tmgt convert` subprocess, pointed at an empty directory: it exits 2.
    const convert = () =>
      runConverter({
        converter: 'reference',
        model: 'empty',
        sourceDir: empty,
        target: parseTarget('gguf/f32'),
        outDir: workDir,
        timeoutMs: 60_000,
      });
    const r = record(
      await runCell(
        { converter: 'reference', model: 'llama-tiny', target: parseTarget('gguf/f32'), engine: 'bundled' },
        { ...opts, providers: { convert } },
      ),
    );
    expect(r.checks.length).toBeGreaterThan(0);
    for (const c of r.checks) expect(c.verdicts.map((v) => [v.code, v.evidence['exitCode']])).toEqual([['F-RUNTIME-001', 2]]);
  });

  it('F-RUNTIME-003: a claim the harness cannot evaluate (no oracle record) fails with it, never disappears', async () => {
    const r = record(
      await runCell(
        { converter: 'reference', model: 'llama-tiny', target: parseTarget('gguf/q8_0'), engine: 'bundled' },
        { ...opts, suites: ['logits'], providers: { oracle: async () => [] } },
      ),
    );
    expect(r.checks).toHaveLength(DEFAULT_PROMPTS.length);
    for (const c of r.checks) expect(c.verdicts.map((v) => v.code)).toEqual(['F-RUNTIME-003']);
  });

  it('F-FILE-001/002: a truncated and a bad-magic reference GGUF give file verdicts', async () => {
    const source = await buildModel(findModelSpec('llama-tiny'));
    const r = await runConverter({
      converter: 'reference',
      model: 'llama-tiny',
      sourceDir: source,
      target: parseTarget('gguf/q8_0'),
      outDir: workDir,
      timeoutMs: 60_000,
    });
    if (r.status !== 'ok') throw new Error(r.status === 'failed' ? r.log : r.reason);
    const bytes = new Uint8Array(readFileSync(r.artifact));
    const truncated = bytes.slice(0, Math.floor(bytes.length * 0.8));
    const badMagic = bytes.slice();
    badMagic[0] = 0x58;
    for (const [b, code] of [
      [truncated, 'F-FILE-002'],
      [badMagic, 'F-FILE-001'],
    ] as const) {
      const codes = checkFile(readModelFile(new BufferByteSource(b))).verdicts.map((v) => v.code);
      codes.forEach((c) => produced.add(c));
      expect(codes).toContain(code);
    }
  });

  it('F-FILE-004: an APR file whose footer CRC32 does not match its bytes', () => {
    const values = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const bytes = encodeApr({ tensors: [aprTensorFromF32('w', [8, 8], values, 'F32')] });
    const at = bytes.length - 20; // a data byte: the footer no longer matches
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    const codes = checkFile(readModelFile(new BufferByteSource(bytes))).verdicts.map((v) => v.code);
    codes.forEach((c) => produced.add(c));
    expect(codes).toContain('F-FILE-004');
  });

  it('F-CROSS-RUNTIME-001: llama.cpp and the bundled engine disagree on a file whose Q/K permute was skipped', async () => {
    // Without the permute, llama.cpp's NORM RoPE rotates the wrong pairs; the bundled engine does the same
    // arithmetic on the same file, so the two can only disagree where their rotations differ — they do:
    // the suite is measured here on a real artifact, with llama.cpp in its child process.
    const r = record(
      await runCell(
        { converter: 'mutant:qk-permute-skipped', model: 'llama-tiny', target: parseTarget('gguf/q8_0'), engine: 'bundled' },
        { ...opts, suites: ['cross-runtime'] },
      ),
    );
    const codes = r.checks.flatMap((c) => c.verdicts.map((v) => v.code));
    expect(codes).toContain('F-CROSS-RUNTIME-001');
  });

  it('F-TOKENS-003: a higher-precision cell drifting more than a lower one, from real cells', async () => {
    const run = (converter: string, target: string) =>
      runCell({ converter, model: 'llama-tiny', target: parseTarget(target), engine: 'bundled' }, { ...opts, suites: ['tokens'] });
    const broken = await run('mutant:byteswapped', 'gguf/f32');
    const reference = await run('reference', 'gguf/q8_0');
    const cells = [broken, reference].map((r) => ({ ...r, converter: 'one converter' }));
    addDriftOrdering(cells);
    const drift = cells.flatMap((c) => c.checks).filter((c) => c.prompt === 'drift ordering');
    expect(drift).toHaveLength(1);
    drift[0]?.verdicts.forEach((v) => produced.add(v.code));
    expect(drift[0]?.verdicts.map((v) => v.code)).toContain('F-TOKENS-003');
  });
});
