/**
 * The input generator of each fuzz target, addressable by index: input i of a run is the (i mod CHUNK)-th
 * sample of chunk ⌊i / CHUNK⌋, drawn by fast-check from seed + chunk. A child restarted after a hang
 * resumes at any index, and the parent can rebuild the input that hung from its index alone.
 */
import fc from 'fast-check';
import type { FuzzTarget } from './contract.js';
import { aprFields, aprGood, apply, ggufFields, ggufGood, mutatedSeed, mutations, reseal, stGood, type Mutation } from './seeds.js';
import { aprStructured, ggufStructured, safetensorsStructured, sniffEdges } from './structured.js';

/** Inputs per fast-check sample call: regenerating one chunk to resume costs well under a second. */
export const CHUNK = 500;

/** The scale mutation positions are drawn on; they are rescaled to each file's size. */
const SCALE = 1 << 16;

/** 0–2 mutations of any file, positions scaled to its size (for files built from scratch). */
function remutate(base: fc.Arbitrary<Uint8Array>, json: boolean, sealable: boolean): fc.Arbitrary<Uint8Array> {
  return fc
    .record({ bytes: base, ms: fc.array(mutations(SCALE, 1, json), { maxLength: 2 }), seal: fc.boolean() })
    .map(({ bytes, ms, seal }) => {
      const scaled = ms.map((m): Mutation => ('at' in m ? { ...m, at: Math.floor((m.at / SCALE) * bytes.length) } : m));
      const out = scaled.reduce((b, m) => apply(b, m, [0]), bytes);
      return sealable && seal ? reseal(out) : out;
    });
}

function perFormat(target: Exclude<FuzzTarget, 'auto'>): fc.Arbitrary<Uint8Array> {
  switch (target) {
    case 'gguf':
      return fc.oneof(
        { weight: 9, arbitrary: mutatedSeed(ggufGood, ggufFields()) },
        { weight: 8, arbitrary: ggufStructured },
        { weight: 3, arbitrary: remutate(ggufStructured, false, false) },
      );
    case 'apr':
      return fc.oneof(
        { weight: 9, arbitrary: mutatedSeed(aprGood, aprFields(), { sealable: true }) },
        { weight: 8, arbitrary: aprStructured },
        { weight: 3, arbitrary: remutate(aprStructured, false, true) },
      );
    case 'safetensors':
      return fc.oneof(
        { weight: 9, arbitrary: mutatedSeed(stGood, [0], { json: true }) },
        { weight: 8, arbitrary: safetensorsStructured },
        { weight: 3, arbitrary: remutate(safetensorsStructured, true, false) },
      );
  }
}

/** The generator of one target; `auto` (readModelFile) draws from all three formats plus sniffing edges and noise. */
export function generatorFor(target: FuzzTarget): fc.Arbitrary<Uint8Array> {
  if (target !== 'auto') return perFormat(target);
  return fc.oneof(
    { weight: 3, arbitrary: perFormat('gguf') },
    { weight: 3, arbitrary: perFormat('apr') },
    { weight: 3, arbitrary: perFormat('safetensors') },
    { weight: 2, arbitrary: sniffEdges },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  );
}

/** A deterministic seed per target, so `make fuzz` is reproducible and each target sees different inputs. */
export const SEEDS: Record<FuzzTarget, number> = { gguf: 0x6775_6600, apr: 0x6170_7200, safetensors: 0x7374_0000, auto: 0x6175_7400 };

/** Inputs [from, to) of `target` under `seed`, chunk by chunk. */
export function* inputs(target: FuzzTarget, seed: number, from: number, to: number): Generator<{ index: number; bytes: Uint8Array }> {
  const arb = generatorFor(target);
  for (let chunk = Math.floor(from / CHUNK); chunk * CHUNK < to; chunk++) {
    const batch = fc.sample(arb, { seed: (seed + chunk) | 0, numRuns: CHUNK });
    for (let k = 0; k < CHUNK; k++) {
      const index = chunk * CHUNK + k;
      if (index < from || index >= to) continue;
      // fc.sample returned exactly CHUNK values, so index k < CHUNK is present.
      yield { index, bytes: batch[k] as Uint8Array };
    }
  }
}

/** Input `index` alone (to save the one a killed child was reading). */
export function inputAt(target: FuzzTarget, seed: number, index: number): Uint8Array {
  const first = inputs(target, seed, index, index + 1).next();
  if (first.done === true) throw new Error(`no input ${index}`);
  return first.value.bytes;
}
