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
  /**
   * The request's first output token, already produced by a prefill worker (disaggregated
   * serving). The engine continues after it and never emits it; it counts toward
   * stop.maxTokens.
   */
  firstToken?: number;
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
  /** Disaggregation hooks, on engines that can export and import KV (the mocker does). */
  readonly kv?: KvTransferHooks;
}

/**
 * Shape of a KV cache's bytes. Block layout is "fully contiguous" (as Dynamo's KVBM): block
 * i at byte i × blockBytes, inside it [layer][K then V][slot (token in block)][kvHeads ×
 * headDim elements].
 */
export interface KvCacheLayout {
  numLayers: number;
  kvHeads: number;
  headDim: number;
  dtypeBytes: number;
  blockSize: number;
}

/** What a prefill worker hands on: the first token and where the prompt's KV lies. */
export interface PrefillResult {
  firstToken: number;
  /**
   * Set when the first token ends the request (EOS unless ignoreEos, a stop token id, or
   * maxTokens 1): then nothing is pinned and blockIds is empty.
   */
  finishReason?: 'stop' | 'length';
  /** Prompt tokens served from this engine's prefix cache. */
  cachedTokens: number;
  promptTokens: number;
  /** Blocks holding the prompt's KV, in token order, a partial last block included (ceil(prompt/blockSize) ids). */
  blockIds: number[];
  /**
   * Sequence hashes (as the router uses: computeSequenceHashes(computeBlockHashes(prompt,
   * blockSize)) from @armature/kv) of the prompt's full blocks.
   */
  blockHashes: bigint[];
  /**
   * Engines of the 'state' format: the exact byte size of the exported sequence state that
   * blockIds (staging blocks, in order) hold.
   */
  stateBytes?: number;
}

/** Which of a remote prefill's blocks a decode engine pulls, and where they go. */
export interface ImportPlan {
  /**
   * Prompt block positions (0-based, token order) to pull from the prefill worker: the full
   * blocks this engine's prefix cache lacks, plus the partial last block if any.
   */
  blockIndices: number[];
  /** Where each goes in this engine's KV memory (same length as blockIndices). */
  localBlockIds: number[];
  /** Leading full blocks found in this engine's prefix cache (not pulled). */
  cachedBlocks: number;
}

/** Disaggregation hooks of an engine that can export and import KV. */
export interface KvTransferHooks {
  /**
   * How KV travels. 'blocks' (default, the mocker): paged KV blocks, named one by one, and
   * an import pulls only the blocks the engine's prefix cache lacks. 'state' (llama.cpp):
   * the prompt's KV leaves as one opaque sequence state cut into staging blocks of
   * blockBytes (PrefillResult.stateBytes says how much of the last one is used) and is
   * pulled whole.
   */
  readonly format?: 'blocks' | 'state';
  readonly layout: KvCacheLayout;
  /** numLayers × 2 × kvHeads × headDim × dtypeBytes × blockSize. */
  readonly blockBytes: number;
  readonly totalBlocks: number;
  /**
   * Puts the KV cache's bytes in `memory` (at least totalBlocks × blockBytes bytes; e.g. a
   * transfer library region). Call before the first request; throws if too small or called
   * twice. Until attached the engine keeps no bytes (writes and checks are skipped).
   */
  attachMemory(memory: Uint8Array): void;
  /**
   * Prefill only: queues the prompt like any request, samples its first token, and keeps the
   * prompt's blocks pinned under request.requestId until release() — unless the first token
   * ends the request (then frees them). Aborting `signal` before the first token cancels it
   * and rejects with ArmatureError('cancelled', 'request_cancelled', ...). Invalid requests
   * reject like generate() throws.
   */
  prefill(request: EngineRequest, signal: AbortSignal): Promise<PrefillResult>;
  /** Frees a pinned prefill's blocks (they stay in the prefix cache, evictable); false when not pinned. */
  release(requestId: string): boolean;
  /** Pinned prefills and the blocks they hold. */
  pinned(): { requests: number; blocks: number };
  /**
   * Holds blocks for a remote prefill's KV: the cached prefix plus fresh blocks for the rest
   * (format 'state': staging blocks for `stateBytes` bytes). undefined when the free blocks
   * do not suffice (the caller then prefills locally). Throws
   * ArmatureError('invalid_argument') for an empty prompt or an id already in use.
   */
  reserveImport(requestId: string, tokenIds: readonly number[], stateBytes?: number): ImportPlan | undefined;
  /**
   * The pulled bytes are in place: checks them (every imported token row's fingerprint, when
   * memory is attached) and registers the imported full blocks in the prefix cache
   * (BlockStored events). Returns false — freeing the reservation — when any byte check
   * fails. After true, generate() with this requestId and firstToken decodes from the
   * imported KV without recomputing the prompt. Throws if no reservation.
   */
  commitImport(requestId: string): boolean;
  /** Frees a reservation, committed or not, that generate() has not taken; no-op when unknown. */
  cancelImport(requestId: string): void;
}
