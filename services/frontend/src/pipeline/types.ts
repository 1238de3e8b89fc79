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

/** Why a request left its worker for another one. */
export type RetryKind = 'reroute' | 'migrate';

/** Settings of the pipeline, compiled once at start-up. */
export interface PipelineOptions {
  /** Deadline of one Prefill call (ARMATURE_PREFILL_TIMEOUT_MS); past it the decode worker prefills instead. */
  prefillTimeoutMs: number;
  /**
   * How often one request may move to another worker after its stream broke mid-generation
   * (ARMATURE_MIGRATION_LIMIT, default 3; 0 turns migration off).
   */
  migrationLimit?: number;
  /** Longest prompt + generated sequence that migrates, tokens (ARMATURE_MIGRATION_MAX_SEQ_LEN; 0: any). */
  migrationMaxSeqLen?: number;
  /**
   * Longest wait for the decode worker's next message once it has answered, ms
   * (ARMATURE_STALL_TIMEOUT_MS, default 10 000; 0: none). Past it the worker counts as
   * stalled and the request migrates.
   */
  stallTimeoutMs?: number;
  /**
   * Longest wait for a worker to take a Generate call (its response headers, sent before it
   * queues or prefills), ms (ARMATURE_ACCEPT_TIMEOUT_MS, default 3000; 0: none). Past it the
   * worker counts as stopped or stuck and the request goes elsewhere.
   */
  acceptTimeoutMs?: number;
  /** Told how long each routing attempt and each remote prefill call took, in seconds (metrics). */
  onStage?(stage: 'route' | 'prefill', seconds: number, model: string): void;
  /** Told of every re-route and migration (metrics). */
  onRetry?(kind: RetryKind, reason: string, worker: string): void;
  /** Told when a request that should migrate has no attempt left. */
  onRetriesExhausted?(kind: RetryKind, reason: string): void;
}
