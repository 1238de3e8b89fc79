// The values that flow between the pipeline's stages: the prepared request every stage
// reads, and the events the last stage hands to the HTTP layer to render.
import type { NormalizedRequest } from '@armature/openai';
import type { Tokenizer } from '@armature/tokenizer';
import type { ServedModel } from './ports.js';

/** A request that passed every check, tokenized, with its limits resolved. */
export interface PreparedRequest {
  /** The request's id: the request context's id, and the router's id of its first routing attempt. */
  requestId: string;
  model: ServedModel;
  tokenizer: Tokenizer;
  promptIds: number[];
  /** Tokens to generate at most, resolved against the context (never undefined). */
  maxTokens: number;
  request: NormalizedRequest;
}

export type FinishKind = 'stop' | 'length';

export type PipelineEvent =
  | { type: 'start'; worker: string; prefillWorker?: string; cachedTokens: number; promptTokens: number }
  /** New text; `tokens` counts the tokens behind it (text may be empty while a character or stop string is pending). */
  | { type: 'text'; text: string; tokens: number }
  | { type: 'end'; finishReason: FinishKind; completionTokens: number };

/** Settings of the pipeline, compiled once at start-up. */
export interface PipelineOptions {
  /** Deadline of one Prefill call (ARMATURE_PREFILL_TIMEOUT_MS); past it the decode worker prefills instead. */
  prefillTimeoutMs: number;
}
