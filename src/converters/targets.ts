import { UsageError } from '../errors.js';
import type { DType } from '../formats/types.js';

/** Every target a converter can be asked for, `<format>/<type>`, with the storage type of its quantized weights. */
export const TARGETS = {
  'gguf/f32': { format: 'gguf', type: 'f32', weightDType: 'F32', fileType: 0 },
  'gguf/q8_0': { format: 'gguf', type: 'q8_0', weightDType: 'Q8_0', fileType: 7 },
} as const satisfies Record<string, { format: 'gguf'; type: string; weightDType: DType; fileType: number }>;

export type TargetId = keyof typeof TARGETS;
export type Target = (typeof TARGETS)[TargetId] & { id: TargetId };

export function parseTarget(id: string): Target {
  if (!(id in TARGETS)) throw new UsageError(`unknown target '${id}' (known: ${Object.keys(TARGETS).join(', ')})`);
  return { ...TARGETS[id as TargetId], id: id as TargetId };
}
