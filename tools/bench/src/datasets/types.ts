// The workload shape shared by `armature bench` (sends `prompt` to /v1/completions) and
// `armature replay` (feeds `promptTokenIds` straight into mocker engines): both must see
// the same requests, so every dataset loader produces this one shape.

export interface WorkloadRequest {
  /** Stable id, e.g. `mooncake-00042`. */
  id: string;
  /** Arrival offset in ms from the first request of the trace (trace datasets only). */
  arrivalMs?: number;
  /** Text sent to /v1/completions. */
  prompt: string;
  /** Exactly `tokenizer.encode(prompt)`. */
  promptTokenIds: number[];
  /** The input length the dataset asked for. */
  targetInputTokens: number;
  /** Output length, forced with max_tokens + ignore_eos. */
  outputTokens: number;
  /** Shared-prefix group id, when the workload has one. */
  prefixGroup?: string;
}

/** How far prompts are from the lengths the dataset asked for (0 everywhere when exact). */
export interface PromptLengthError {
  /** Mean of |actual - target| tokens. */
  meanAbs: number;
  /** Max of |actual - target| tokens. */
  maxAbs: number;
  /** Mean of |actual - target| / target. */
  meanRel: number;
  /** Requests whose prompt was re-encoded to check `promptTokenIds`. */
  sampled: number;
  /** Sampled requests whose `encode(prompt)` differed from `promptTokenIds`. */
  mismatched: number;
}

export interface Workload {
  name: string;
  requests: WorkloadRequest[];
  /** Tokenizer id the token ids belong to, e.g. `gpt-tokenizer:o200k_base`. */
  tokenizer: string;
  promptLengthError: PromptLengthError;
}
