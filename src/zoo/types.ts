/** Hugging Face `config.json` fields the harness reads for the LLaMA family (llama, qwen2). */
export interface LlamaHfConfig {
  architectures: string[];
  model_type: 'llama' | 'qwen2';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Per-head width; HF defaults it to hidden_size / num_attention_heads. */
  head_dim?: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  hidden_act: 'silu';
  bos_token_id: number;
  eos_token_id: number;
  torch_dtype: 'float32';
  /** Llama convention for q/k/v/o biases; Qwen2 always has q/k/v biases (and reads no such key). */
  attention_bias?: boolean;
}

/** Hugging Face `config.json` of a GPT-2 (`GPT2LMHeadModel`). */
export interface Gpt2HfConfig {
  architectures: string[];
  model_type: 'gpt2';
  vocab_size: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_positions: number;
  /** FFN width; null means 4·n_embd. */
  n_inner: number | null;
  activation_function: 'gelu_new';
  layer_norm_epsilon: number;
  bos_token_id: number;
  eos_token_id: number;
  /** GPT-2 ties lm_head to wte (HF default true). */
  tie_word_embeddings?: boolean;
  torch_dtype: 'float32';
}

export type HfConfig = LlamaHfConfig | Gpt2HfConfig;
export type Arch = HfConfig['model_type'];

/** One tensor of an in-memory checkpoint, in torch (row-major, outermost first) shape order. */
export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

/** An HF checkpoint held in memory: config plus f32 tensors keyed by their HF names. */
export interface Checkpoint {
  config: HfConfig;
  tensors: Map<string, CheckpointTensor>;
}

export function isGpt2(config: HfConfig): config is Gpt2HfConfig {
  return config.model_type === 'gpt2';
}

/** Qwen2 always has q/k/v biases; llama only with `attention_bias`. */
export function hasQkvBias(config: LlamaHfConfig): boolean {
  return config.model_type === 'qwen2' || config.attention_bias === true;
}

export function headDim(config: LlamaHfConfig): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

/** The dimensions every architecture has, under one set of names. */
export interface CommonDims {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  maxPositions: number;
  tied: boolean;
}

export function commonDims(config: HfConfig): CommonDims {
  if (isGpt2(config)) {
    return {
      vocab: config.vocab_size,
      hidden: config.n_embd,
      layers: config.n_layer,
      heads: config.n_head,
      kvHeads: config.n_head,
      headDim: config.n_embd / config.n_head,
      ffn: config.n_inner ?? 4 * config.n_embd,
      maxPositions: config.n_positions,
      tied: config.tie_word_embeddings ?? true,
    };
  }
  return {
    vocab: config.vocab_size,
    hidden: config.hidden_size,
    layers: config.num_hidden_layers,
    heads: config.num_attention_heads,
    kvHeads: config.num_key_value_heads,
    headDim: headDim(config),
    ffn: config.intermediate_size,
    maxPositions: config.max_position_embeddings,
    tied: config.tie_word_embeddings,
  };
}
