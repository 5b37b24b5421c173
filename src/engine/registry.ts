/** The bundled engine's architectures, chosen by a file's `general.architecture`. */
import type { ByteSource } from '../formats/byte-source.js';
import type { ModelFile } from '../formats/types.js';
import { Gpt2Model } from './gpt2.js';
import { LlamaModel } from './llama.js';
import type { EngineModel } from './types.js';
import { EngineError } from './weights.js';

type ModelFactory = (file: ModelFile, src: ByteSource) => EngineModel;

/** `general.architecture` → model class. */
export const ENGINE_ARCHS = {
  llama: (file, src) => new LlamaModel(file, src),
  qwen2: (file, src) => new LlamaModel(file, src),
  gpt2: (file, src) => new Gpt2Model(file, src),
} as const satisfies Record<string, ModelFactory>;

export type EngineArch = keyof typeof ENGINE_ARCHS;

/** Load a model of any supported architecture; an unknown or missing architecture is an EngineError (→ F-RUNTIME-002). */
export function loadEngineModel(file: ModelFile, src: ByteSource): EngineModel {
  const fatal = file.issues.find((i) => i.fatal);
  if (fatal) throw new EngineError(`file is unreadable: ${fatal.code} ${fatal.message}`);
  const arch = file.metadata.get('general.architecture');
  if (typeof arch !== 'string' || !Object.hasOwn(ENGINE_ARCHS, arch)) {
    throw new EngineError(`general.architecture is ${JSON.stringify(arch)}; the bundled engine runs ${Object.keys(ENGINE_ARCHS).join(', ')}`);
  }
  return ENGINE_ARCHS[arch as EngineArch](file, src);
}
