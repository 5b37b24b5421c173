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
  /** Qwen2 convention: q/k/v projections carry biases. */
  attention_bias?: boolean;
}

export type HfConfig = LlamaHfConfig;

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

export function headDim(config: HfConfig): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}
