/**
 * `make models-train`: regenerate the corpus and held-out split, re-learn the shared tokenizer, train the
 * three tiny models and write their weights (F32 safetensors, HF names) and specs, then measure each
 * trained model with the onnxruntime oracle. Not run in CI: the outputs are committed.
 *
 *   npx tsx src/zoo/train/cli.ts [--models llama-tiny,qwen2-tiny,gpt2-tiny] [--steps N] [--no-data] [--no-train] [--no-verify]
 *
 * --no-data keeps models/corpus.txt, heldout.txt and tokenizer.json as they are; --no-data --no-train only
 * re-checks the committed weights with the oracle. Hyper-parameters come from
 * each spec's "training" key when present (so a re-run reproduces the committed weights), else defaults.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { f32Bytes, writeSafetensorsFile } from '../src/formats/safetensors/writer.js';
import { oracleRecords } from '../src/oracle/records.js';
import { buildModel } from '../src/zoo/build.js';
import { hfTensorShapes, loadCheckpoint } from '../src/zoo/checkpoint.js';
import { CORPUS_PATH, findModelSpec, MODELS_DIR, TOKENIZER_PATH } from '../src/zoo/specs.js';
import { HfTokenizer, SPECIAL_TOKEN, trainByteLevelBpe, type TokenizerJson } from '../src/zoo/tokenizer.js';
import { commonDims, type Checkpoint, type HfConfig } from '../src/zoo/types.js';
import { formatDocs, generateCorpus, parseDocs } from './corpus.js';
import { HELDOUT_PATH, measurePeakedness, readHeldout } from './peakedness.js';
import { tfjsLogits, train, type TrainOptions } from './train.js';

export const CORPUS_SEED = 20261203;
/** Shared tokenizer size: 256 bytes + 127 merges + <|endoftext|>. */
export const VOCAB_SIZE = 384;
export const TINY_MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;

const DEFAULTS: Omit<TrainOptions, 'seed'> = {
  steps: 1000,
  lr: 3e-3,
  warmupSteps: 100,
  minLrFraction: 0.05,
  batchSize: 16,
  seqLen: 64,
  clipNorm: 1,
};

const SEEDS: Record<string, number> = { 'llama-tiny': 20261130, 'qwen2-tiny': 20261201, 'gpt2-tiny': 20261202 };

const log = (msg: string) => process.stdout.write(`${msg}\n`);

function writeData(): void {
  const split = generateCorpus(CORPUS_SEED);
  writeFileSync(CORPUS_PATH, formatDocs(split.train));
  writeFileSync(HELDOUT_PATH, formatDocs(split.heldout));
  const tok = trainByteLevelBpe(readFileSync(CORPUS_PATH, 'utf8'), VOCAB_SIZE);
  writeFileSync(TOKENIZER_PATH, JSON.stringify(tok, null, 1) + '\n');
  log(
    `corpus: ${split.train.length} training documents (${readFileSync(CORPUS_PATH).length} bytes), ${split.heldout.length} held out; tokenizer: ${Object.keys(tok.model.vocab).length} tokens, ${tok.model.merges.length} merges`,
  );
}

function writeWeights(path: string, ckpt: Checkpoint): void {
  const shapes = hfTensorShapes(ckpt.config);
  const names = [...ckpt.tensors.keys()];
  if (names.length !== shapes.size || names.some((n) => !shapes.has(n)))
    throw new Error(`trained tensors do not match the HF names of ${ckpt.config.model_type}`);
  writeSafetensorsFile(
    path,
    [...shapes].map(([name, shape]) => ({
      name,
      shape,
      dtype: 'F32' as const,
      data: f32Bytes((ckpt.tensors.get(name) as { data: Float32Array }).data),
    })),
    { format: 'pt' },
  );
}

async function trainModel(name: string, steps: number | undefined): Promise<void> {
  const specPath = join(MODELS_DIR, `${name}.json`);
  const raw = JSON.parse(readFileSync(specPath, 'utf8')) as Record<string, unknown>;
  const tokJson = JSON.parse(readFileSync(TOKENIZER_PATH, 'utf8')) as TokenizerJson;
  const special = tokJson.added_tokens.find((t) => t.content === SPECIAL_TOKEN);
  if (special === undefined) throw new Error(`tokenizer has no ${SPECIAL_TOKEN}`);
  const config = {
    ...(raw['config'] as HfConfig),
    vocab_size: special.id + 1,
    bos_token_id: special.id,
    eos_token_id: special.id,
  } as HfConfig;
  const prev = (raw['training'] ?? {}) as Partial<TrainOptions>;
  const opts: TrainOptions = {
    seed: prev.seed ?? SEEDS[name] ?? 1,
    steps: steps ?? prev.steps ?? DEFAULTS.steps,
    lr: prev.lr ?? DEFAULTS.lr,
    warmupSteps: prev.warmupSteps ?? DEFAULTS.warmupSteps,
    minLrFraction: prev.minLrFraction ?? DEFAULTS.minLrFraction,
    batchSize: prev.batchSize ?? DEFAULTS.batchSize,
    seqLen: prev.seqLen ?? DEFAULTS.seqLen,
    clipNorm: prev.clipNorm ?? DEFAULTS.clipNorm,
  };
  const tok = new HfTokenizer(tokJson);
  const docs = parseDocs(readFileSync(CORPUS_PATH, 'utf8')).map((d) => tok.encode(d));
  const nParams = [...hfTensorShapes(config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  log(
    `${name}: ${nParams} parameters, ${docs.length} documents, ${docs.reduce((a, d) => a + d.length + 1, 0)} tokens; ${JSON.stringify(opts)}`,
  );
  const result = await train(config, docs, special.id, opts, (m) => log(`${name}: ${m}`));
  const weights = `weights/${name}.safetensors`;
  mkdirSync(join(MODELS_DIR, 'weights'), { recursive: true });
  writeWeights(join(MODELS_DIR, weights), result.checkpoint);
  const d = commonDims(config);
  const spec = {
    name: raw['name'],
    description: raw['description'],
    arch: raw['arch'],
    config,
    weights,
    training: {
      ...opts,
      optimizer: 'adam beta1 0.9 beta2 0.98 eps 1e-8, linear warm-up then cosine decay, global-norm clipping',
      loss: 'next-token cross-entropy, rows start at a document start, documents joined by <|endoftext|>',
      backend: 'tfjs 4.22.0, wasm backend, 1 thread',
      corpus: 'models/corpus.txt',
      finalLoss: Number(result.finalLoss.toFixed(4)),
      parameters: nParams,
    },
  };
  writeFileSync(specPath, JSON.stringify(spec, null, 2) + '\n');
  log(
    `${name}: trained ${opts.steps} steps in ${result.seconds.toFixed(0)} s, final loss ${result.finalLoss.toFixed(4)}, hidden ${d.hidden}`,
  );
}

/**
 * Check a trained model with the onnxruntime oracle (the peakedness contract of test/zoo/peakedness.test.ts),
 * and compare the trainer's tfjs forward with the oracle's logits on a held-out document: the exported
 * checkpoint must be the function that was trained.
 */
async function verify(name: string): Promise<void> {
  const spec = findModelSpec(name);
  if (spec.kind !== 'trained') throw new Error(`${name} is not a trained spec`);
  const p = await measurePeakedness(spec);
  log(
    `${name}: oracle mean top-1 probability ${p.meanTop1Prob.toFixed(4)}, top-1 accuracy ${p.top1Accuracy.toFixed(4)}, mean target probability ${p.meanTargetProb.toFixed(4)} over ${p.positions} held-out positions (${p.documents} documents)`,
  );
  for (const c of p.continuations) log(`${name}: ${JSON.stringify(c.prompt)} → ${JSON.stringify(c.text)}`);
  const dir = await buildModel(spec);
  const ids = HfTokenizer.fromDir(dir).encode(readHeldout()[0] as string);
  const [rec] = await oracleRecords(dir, [ids], 0);
  const mine = await tfjsLogits(loadCheckpoint(dir), ids);
  let maxDiff = 0;
  for (let i = 0; i < mine.length; i++) maxDiff = Math.max(maxDiff, Math.abs((mine[i] as number) - (rec?.logits[i] as number)));
  log(`${name}: max |tfjs − oracle| logit difference on a held-out document: ${maxDiff.toExponential(2)}`);
  const france = p.continuations.find((c) => c.prompt === 'The capital of France is');
  const problems = [
    p.meanTop1Prob < 0.5 ? `mean top-1 probability ${p.meanTop1Prob} < 0.5` : '',
    p.meanTargetProb < 0.5 ? `mean target probability ${p.meanTargetProb} < 0.5` : '',
    france?.text.includes('Paris') === true ? '' : `'The capital of France is' does not continue with Paris`,
    maxDiff > 1e-3 ? `tfjs and oracle logits differ by ${maxDiff}` : '',
  ].filter(Boolean);
  for (const problem of problems) log(`${name}: FAILED: ${problem}`);
  if (problems.length > 0) process.exitCode = 1;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: TINY_MODELS.join(',') },
      steps: { type: 'string' },
      'no-data': { type: 'boolean', default: false },
      'no-verify': { type: 'boolean', default: false },
      'no-train': { type: 'boolean', default: false },
    },
  });
  if (!values['no-data']) writeData();
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  for (const name of (values.models ?? '').split(',').filter(Boolean)) {
    if (!values['no-train']) await trainModel(name, steps);
    if (!values['no-verify']) await verify(name);
  }
}

await main();
