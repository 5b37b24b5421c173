/**
 * The claims registry: every suite defined once, as data — its level, the targets it applies to, what it needs,
 * and a function from the cell context to one check. `runCell` plans a cell's claims from here and runs each;
 * `suites/` (vitest) generates its tests from the same plan. Adding a suite is one entry.
 */
import { statusOf, type CheckResult } from '../contracts/results.js';
import type { TargetSpec } from '../contracts/targets.js';
import { SUITES, type SuiteName } from '../contracts/verdicts.js';
import { checkCrossRuntime, crossRuntimeBounds } from '../checks/cross-runtime.js';
import { checkDataQuality } from '../checks/data-quality.js';
import { checkFidelity } from '../checks/fidelity.js';
import { checkFile } from '../checks/file.js';
import { checkLayout } from '../checks/layout.js';
import { checkLogits } from '../checks/logits.js';
import { checkMetadata } from '../checks/metadata.js';
import { greedySteps, klPerRow, mean } from '../checks/metrics.js';
import { checkPerplexity } from '../checks/perplexity.js';
import { checkPolicy } from '../checks/policy.js';
import { checkTokens } from '../checks/tokens.js';
import { TOLERANCES } from '../checks/tolerances.js';
import type { CellContext } from './context.js';

/** What a claim needs before it can be judged; the first that fails gives the claim its verdict. */
export type Need = 'artifact' | 'readable file' | 'source checkpoint' | 'oracle' | 'bundled engine' | 'llama.cpp';

/** One prompt of a prompt-level claim. */
export interface PromptRef {
  index: number;
  text: string;
}

export interface SuiteEntry {
  name: SuiteName;
  /** DESIGN.md §4's level. */
  level: string;
  /** Judged once per prompt (logits, tokens, cross-runtime) or once per cell. */
  perPrompt: boolean;
  appliesTo(target: TargetSpec): boolean;
  needs: readonly Need[];
  /** One claim. Throws PrerequisiteFailed (from the context) when something it needs cannot be had. */
  run(ctx: CellContext, prompt: PromptRef | undefined): Promise<CheckResult>;
}

const everyTarget = (): boolean => true;

function promptOf(prompt: PromptRef | undefined): PromptRef {
  if (prompt === undefined) throw new Error('a prompt-level claim was planned without a prompt');
  return prompt;
}

/** A prompt's oracle record and the bundled engine's run of it (both teacher-forced on the oracle's ids). */
async function oracleAndEngine(ctx: CellContext, p: PromptRef | undefined) {
  const { index, text } = promptOf(p);
  return { text, o: await ctx.oracle(index), got: await ctx.engine(index) };
}

const ENTRIES: Record<SuiteName, Omit<SuiteEntry, 'name'>> = {
  file: {
    level: 'L0 file',
    perPrompt: false,
    appliesTo: everyTarget,
    needs: ['artifact'],
    run: async (ctx) => checkFile((await ctx.readAny()).file),
  },
  metadata: {
    level: 'L1 metadata',
    perPrompt: false,
    appliesTo: everyTarget,
    needs: ['readable file', 'source checkpoint'],
    run: async (ctx) => {
      const { file } = await ctx.file();
      const { checkpoint, tokenizer, prompts } = ctx.inputs;
      return checkMetadata(file, { config: checkpoint.config, tokenizer, prompts });
    },
  },
  layout: {
    level: 'L2 layout',
    perPrompt: false,
    appliesTo: everyTarget,
    needs: ['readable file', 'source checkpoint'],
    run: async (ctx) => {
      const { file, src } = await ctx.file();
      const expected = await ctx.expected();
      const layout = checkLayout(file, expected);
      const policy = checkPolicy(file, ctx.inputs.policy, expected, src);
      // A tensor whose element count or byte size is already wrong has no meaningful dtype to hold to the policy: its
      // bytes are not what its header says. One verdict per broken tensor, the first that fires.
      const broken = new Set(
        layout.verdicts.filter((v) => v.code === 'F-LAYOUT-CONTRACT-001' || v.code === 'F-LAYOUT-CONTRACT-004').map((v) => v.tensor),
      );
      const verdicts = [...layout.verdicts, ...policy.verdicts.filter((v) => v.tensor === undefined || !broken.has(v.tensor))];
      return { suite: 'layout', status: statusOf(verdicts), verdicts };
    },
  },
  'data-quality': {
    level: 'L3 data quality',
    perPrompt: false,
    appliesTo: everyTarget,
    needs: ['readable file', 'source checkpoint'],
    run: async (ctx) => {
      const { file, src } = await ctx.file();
      return checkDataQuality(file, src, await ctx.expected(), TOLERANCES[ctx.inputs.target.id]);
    },
  },
  fidelity: {
    level: 'L4 fidelity',
    perPrompt: false,
    appliesTo: everyTarget,
    needs: ['readable file', 'source checkpoint'],
    run: async (ctx) => {
      const { file, src } = await ctx.file();
      return checkFidelity(file, src, await ctx.expected(), TOLERANCES[ctx.inputs.target.id], { config: ctx.inputs.checkpoint.config });
    },
  },
  logits: {
    level: 'L5 logits',
    perPrompt: true,
    appliesTo: everyTarget,
    needs: ['readable file', 'oracle', 'bundled engine'],
    run: async (ctx, p) => {
      const { text, o, got } = await oracleAndEngine(ctx, p);
      const layers = got.layerOutputs ? { oracle: o.layerOutputs, candidate: got.layerOutputs } : undefined;
      const tol = TOLERANCES[ctx.inputs.target.id];
      return ctx.judged('logits', text, (baseline) =>
        checkLogits(text, o.logits, got.logits, o.vocabSize, tol, layers, { baseline, ids: o.ids }),
      );
    },
  },
  perplexity: {
    level: 'L5 logits',
    perPrompt: false,
    appliesTo: everyTarget,
    needs: ['readable file', 'oracle', 'bundled engine'],
    run: async (ctx) => {
      const { pairs, vocab } = await ctx.perplexityRun();
      const tol = TOLERANCES[ctx.inputs.target.id];
      return ctx.judged('perplexity', '', (baseline) => checkPerplexity(pairs, vocab, tol, baseline));
    },
  },
  tokens: {
    level: 'L6 tokens',
    perPrompt: true,
    appliesTo: everyTarget,
    needs: ['readable file', 'oracle', 'bundled engine'],
    run: async (ctx, p) => {
      const { text, o, got } = await oracleAndEngine(ctx, p);
      const steps = greedySteps(o.logits, o.vocabSize, o.promptIds.length, o.greedyIds.length);
      const decode = (ids: number[]) => ctx.inputs.tokenizer.decode(ids);
      const tol = TOLERANCES[ctx.inputs.target.id];
      const check = await ctx.judged('tokens', text, (baseline) =>
        checkTokens(text, o.greedyIds, got.greedyIds, tol, decode, steps, baseline),
      );
      // The drift-ordering claim (F-TOKENS-003) reads how far the cell drifts: the mean KL over every position.
      const klMean = mean(klPerRow(o.logits, got.logits, o.vocabSize));
      return {
        ...check,
        metrics: { ...check.metrics, klMean },
        detail: { ...check.detail, oracleText: decode(o.greedyIds), candidateText: decode(got.greedyIds) },
      };
    },
  },
  roundtrip: {
    level: 'cross',
    perPrompt: false,
    appliesTo: (t) => t.roundtrip,
    needs: ['readable file', 'source checkpoint'],
    run: (ctx) => ctx.roundtrip(),
  },
  'cross-runtime': {
    level: 'cross',
    perPrompt: true,
    appliesTo: (t) => t.crossRuntime,
    needs: ['readable file', 'oracle', 'bundled engine', 'llama.cpp'],
    run: async (ctx, p) => {
      const { index, text } = promptOf(p);
      await ctx.oracle(index); // both engines are teacher-forced on the oracle's ids
      const ours = await ctx.engine(index);
      const theirs = await ctx.llamaCpp(index);
      const bounds = crossRuntimeBounds(ctx.inputs.checkpoint.config.model_type, ctx.inputs.target.id);
      return ctx.judged('cross-runtime', text, (baseline) =>
        checkCrossRuntime(text, ours.logits, theirs.logits, ours.vocabSize, bounds, baseline),
      );
    },
  },
};

/** The registry, in run order (DESIGN.md §4 levels L0–L6, then the cross checks). */
export const SUITE_REGISTRY: readonly SuiteEntry[] = SUITES.map((name) => ({ name, ...ENTRIES[name] }));

export function suiteEntry(name: SuiteName): SuiteEntry {
  return { name, ...ENTRIES[name] };
}

/** One planned claim of a cell. */
export interface Claim {
  suite: SuiteName;
  prompt?: PromptRef;
}

/** The suites that apply to a target, of those asked for. */
export function suitesFor(target: TargetSpec, suites: readonly SuiteName[] = SUITES): SuiteName[] {
  return SUITE_REGISTRY.filter((e) => suites.includes(e.name) && e.appliesTo(target)).map((e) => e.name);
}

/** Every claim of a cell: one per cell-level suite, one per prompt for the prompt-level suites. */
export function planClaims(target: TargetSpec, prompts: readonly string[], suites: readonly SuiteName[] = SUITES): Claim[] {
  return suitesFor(target, suites).flatMap((suite) =>
    suiteEntry(suite).perPrompt ? prompts.map((text, index) => ({ suite, prompt: { index, text } })) : [{ suite }],
  );
}

/** The key of a claim, as checks carry it (suite and prompt text). */
export function claimKey(c: { suite: SuiteName; prompt?: string | PromptRef }): string {
  const prompt = typeof c.prompt === 'object' ? c.prompt.text : c.prompt;
  return prompt === undefined ? c.suite : `${c.suite}\u0000${prompt}`;
}
