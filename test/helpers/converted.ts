/**
 * Test helper shared by the check tests: build zoo models once, convert them with the reference converter
 * (optionally through a mutate callback that injects a bug into the plan), and read the result back.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedTensors, type ExpectedTensor } from '../../src/checks/manifest.js';
import type { PlannedTensor } from '../../src/converters/plan.js';
import { convertCheckpoint } from '../../src/converters/reference.js';
import { parseTarget, type Target } from '../../src/converters/targets.js';
import { FileByteSource } from '../../src/formats/byte-source.js';
import { readModelFile } from '../../src/formats/read-model.js';
import type { ModelFile } from '../../src/formats/types.js';
import { buildModel } from '../../src/zoo/build.js';
import { loadCheckpoint } from '../../src/zoo/checkpoint.js';
import { findModelSpec } from '../../src/zoo/specs.js';
import type { Checkpoint } from '../../src/zoo/types.js';

export const ZOO_MODELS = ['llama-tiny', 'qwen2-tiny', 'gpt2-tiny'] as const;

/** A bug injected into the reference plan (the plan's shape is checked by tensorsOf). */
export type Mutate = (plan: unknown) => void;

/** The plan's tensors; throws when the plan no longer has `tensors[]` of {name, shape, dtype, values}. */
export function tensorsOf(plan: unknown): PlannedTensor[] {
  const t = (plan as { tensors?: unknown } | null)?.tensors;
  if (
    !Array.isArray(t) ||
    t.some(
      (x: Partial<PlannedTensor>) =>
        typeof x?.name !== 'string' || !Array.isArray(x.shape) || typeof x.dtype !== 'string' || !(x.values instanceof Float32Array),
    )
  ) {
    throw new Error('the reference plan changed shape: expected tensors[] of {name, shape, dtype, values}');
  }
  return t as PlannedTensor[];
}

export const roleOf = (t: PlannedTensor): string => t.role ?? t.name;

/** The planned tensor of a llama.cpp role (`blk.0.ffn_down.weight`, `output.weight` …). */
export function tensorOf(plan: unknown, role: string): PlannedTensor {
  const t = tensorsOf(plan).find((x) => roleOf(x) === role);
  if (!t) throw new Error(`the plan has no tensor for ${role}`);
  return t;
}

export interface Converted {
  file: ModelFile;
  src: FileByteSource;
  target: Target;
  expected: ExpectedTensor[];
  ckpt: Checkpoint;
}

/** Built models and the files converted from them; `close()` in afterAll. */
export class ConvertedFiles {
  private readonly sources = new Map<string, { dir: string; ckpt: Checkpoint }>();
  private readonly opened: FileByteSource[] = [];
  private readonly workDir: string;

  constructor(prefix: string) {
    this.workDir = mkdtempSync(join(tmpdir(), prefix));
  }

  async load(models: readonly string[]): Promise<void> {
    for (const m of models) this.add(m, await buildModel(findModelSpec(m)));
  }

  /** Register a checkpoint directory under a name (e.g. a seeded variant a test writes itself). */
  add(name: string, dir: string): void {
    this.sources.set(name, { dir, ckpt: loadCheckpoint(dir) });
  }

  source(name: string): { dir: string; ckpt: Checkpoint } {
    const s = this.sources.get(name);
    if (!s) throw new Error(`${name} was not built`);
    return s;
  }

  convert(model: string, targetId: string, mutate?: Mutate): Converted {
    const s = this.source(model);
    const target = parseTarget(targetId);
    const out = join(this.workDir, `${model}.${targetId.replace('/', '_')}.${this.opened.length}`);
    convertCheckpoint(s.dir, target, out, mutate);
    const src = new FileByteSource(out);
    this.opened.push(src);
    return { file: readModelFile(src), src, target, expected: expectedTensors(s.ckpt, target.format), ckpt: s.ckpt };
  }

  close(): void {
    for (const s of this.opened) s.close();
  }
}
