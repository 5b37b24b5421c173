/**
 * The bundled engine's architectures. A GGUF names its architecture (`general.architecture`) and carries
 * llama.cpp's layout; an APR v2 file carries HF names and layout and its architecture and dimensions in
 * its JSON metadata; a safetensors file carries HF names and layout and nothing else, so its
 * hyperparameters come from the source checkpoint's config.json.
 */
import type { AprFile } from '../formats/apr/reader.js';
import type { ByteSource } from '../formats/byte-source.js';
import type { MappedArch } from '../formats/name-map.js';
import type { ModelFile } from '../formats/types.js';
import { Gpt2Model, gpt2HparamsFromJson } from './gpt2.js';
import { LlamaModel, llamaHparamsFromJson } from './llama.js';
import type { EngineModel, EngineOptions } from './types.js';
import { EngineError, hfNames } from './weights.js';

type ModelFactory = (file: ModelFile, src: ByteSource, options?: EngineOptions) => EngineModel;
type HfModelFactory = (file: ModelFile, src: ByteSource, hparams: Record<string, unknown>, options: EngineOptions) => EngineModel;

/** `general.architecture` → model class (GGUF layout). */
export const ENGINE_ARCHS = {
  llama: (file, src, options) => new LlamaModel(file, src, undefined, options),
  qwen2: (file, src, options) => new LlamaModel(file, src, undefined, options),
  gpt2: (file, src, options) => new Gpt2Model(file, src, undefined, options),
} as const satisfies Record<MappedArch, ModelFactory>;

/** The same architectures from an HF-layout file, hyperparameters from a JSON object (APR metadata or config.json). */
const HF_ARCHS: Record<MappedArch, HfModelFactory> = {
  llama: (file, src, hp, o) => new LlamaModel(file, src, { hparams: llamaHparamsFromJson(hp), names: hfNames('llama') }, o),
  qwen2: (file, src, hp, o) => new LlamaModel(file, src, { hparams: llamaHparamsFromJson(hp), names: hfNames('qwen2') }, o),
  gpt2: (file, src, hp, o) => new Gpt2Model(file, src, { hparams: gpt2HparamsFromJson(hp), names: hfNames('gpt2') }, o),
};

export type EngineArch = keyof typeof ENGINE_ARCHS;

const isEngineArch = (a: unknown): a is EngineArch => typeof a === 'string' && Object.hasOwn(ENGINE_ARCHS, a);

export interface LoadOptions extends EngineOptions {
  /** The source checkpoint's config.json, parsed: required for safetensors, which carries no hyperparameters. */
  config?: Record<string, unknown>;
}

/** Load a model of any supported architecture and format; anything unrunnable is an EngineError (→ F-RUNTIME-002). */
export function loadEngineModel(file: ModelFile, src: ByteSource, options: LoadOptions = {}): EngineModel {
  const fatal = file.issues.find((i) => i.fatal);
  if (fatal) throw new EngineError(`file is unreadable: ${fatal.code} ${fatal.message}`);
  switch (file.format) {
    case 'gguf': {
      const arch = file.metadata.get('general.architecture');
      if (!isEngineArch(arch))
        throw new EngineError(
          `general.architecture is ${JSON.stringify(arch)}; the bundled engine runs ${Object.keys(ENGINE_ARCHS).join(', ')}`,
        );
      return ENGINE_ARCHS[arch](file, src, options);
    }
    case 'apr': {
      const meta = (file as AprFile).metadataJson ?? {}; // only the APR reader (an AprFile) sets format 'apr'
      const raw = meta['architecture'] ?? meta['model_type'];
      const arch = typeof raw === 'string' ? raw.toLowerCase() : raw;
      if (!isEngineArch(arch))
        throw new EngineError(
          `APR metadata architecture is ${JSON.stringify(raw)}; the bundled engine runs ${Object.keys(ENGINE_ARCHS).join(', ')}`,
        );
      return HF_ARCHS[arch](file, src, meta, options);
    }
    case 'safetensors': {
      const config = options.config;
      if (config === undefined)
        throw new EngineError('a safetensors file carries no hyperparameters: the engine needs the source config.json');
      const arch = config['model_type'];
      if (!isEngineArch(arch))
        throw new EngineError(
          `config.json model_type is ${JSON.stringify(arch)}; the bundled engine runs ${Object.keys(ENGINE_ARCHS).join(', ')}`,
        );
      return HF_ARCHS[arch](file, src, config, options);
    }
    case 'unknown':
      throw new EngineError('unknown file format');
  }
}
