// The engine contract: what a worker service drives, whatever computes the tokens (the
// mocker now; the reference transformer and llama.cpp later). Engines know nothing of
// transport: the worker service forwards their KV events and load to the event plane.
import type { KvEvent, KvEventBatch } from '@armature/kv';
import type { ModelCard } from '@armature/runtime';

/** One generation request, already tokenized (the frontend owns templates and text). */
export interface EngineRequest {
  requestId: string;
  tokenIds: number[];
  sampling: { temperature?: number; topP?: number; topK?: number; seed?: number };
  stop: { maxTokens: number; ignoreEos: boolean; stopTokenIds: number[] };
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

/**
 * One chunk of a request's output stream. The first chunk carries cachedTokens (prompt
 * tokens served from the prefix cache) and promptTokens; it may carry the first token too.
 * The last chunk carries finishReason.
 */
export interface EngineOutput {
  tokenIds: number[];
  finishReason?: FinishReason;
  cachedTokens?: number;
  promptTokens?: number;
}

/** What an engine is busy with (proto WorkerLoad). */
export interface EngineLoad {
  /** KV blocks held by running sequences. */
  activeDecodeBlocks: number;
  /** Prompt tokens not yet computed, waiting and running requests together. */
  activePrefillTokens: number;
  waitingRequests: number;
  runningRequests: number;
  /** Used device KV blocks / total, in [0, 1]. */
  kvUsage: number;
}

export interface Engine {
  readonly card: ModelCard;
  /**
   * Starts a request and streams its output. Aborting `signal` frees everything the request
   * holds and ends the stream with finishReason 'cancelled'. Throws
   * ArmatureError('invalid_argument', ...) for a request that can never run (empty prompt,
   * prompt + max_tokens beyond the context, ...).
   */
  generate(request: EngineRequest, signal: AbortSignal): AsyncIterable<EngineOutput>;
  /** Current load. */
  load(): EngineLoad;
  /** Subscribes to KV events (one batch per scheduler step at most); returns the unsubscribe. */
  onKvEvents(listener: (batch: KvEventBatch) => void): () => void;
  /** Subscribes to load changes (at most once per scheduler step); returns the unsubscribe. */
  onLoad(listener: (load: EngineLoad) => void): () => void;
  /** BlockStored events for every cached block, parents before children (a full dump). */
  kvSnapshot(): KvEvent[];
  /** Stops the engine; streams still open fail with ArmatureError('unavailable'). */
  close(): Promise<void>;
}
