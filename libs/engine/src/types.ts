// The engine contract: what a worker service drives, whatever computes the tokens (the
// mocker, with simulated timing; llama.cpp, with a real GGUF model). Engines know nothing
// of transport: the worker service forwards their KV events and load to the event plane.
// The checks a request must pass are request.ts's, shared by both engines.
import type { KvEvent, KvEventBatch } from '@armature/kv';
import type { ModelCard, WorkerLoad } from '@armature/runtime';

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

/**
 * What an engine is busy with: the worker's load, one type with @armature/runtime's
 * WorkerLoad. activeDecodeBlocks is, for llama.cpp, the running slots' tokens in blocks of
 * blockSize; kvUsage is the mocker's used blocks / total and llama.cpp's held tokens / all
 * slots' context.
 */
export type EngineLoad = WorkerLoad;

/** One forward pass (one batch), as an engine reports it for metrics. */
export interface EngineStep {
  /** Sequences in the batch. */
  sequences: number;
  /** Prompt tokens the batch computed. */
  prefillTokens: number;
  /** Requests preempted by the pass (they wait again and recompute). */
  preempted: number;
  /** How long the pass took, ms; absent where the engine cannot tell (llama.cpp). */
  durationMs?: number;
}

export interface Engine {
  readonly card: ModelCard;
  /**
   * Starts a request and streams its output. Aborting `signal` frees everything the request
   * holds and ends the stream with finishReason 'cancelled'. Throws
   * ArmatureError('invalid_argument', ...) for a request that can never run
   * (validateEngineRequest's reasons, and `duplicate_request_id` for an id in use), and
   * ArmatureError('unavailable', 'engine_closed') once close() was called.
   */
  generate(request: EngineRequest, signal: AbortSignal): AsyncIterable<EngineOutput>;
  /** Current load. */
  load(): EngineLoad;
  /**
   * Subscribes to KV events, batches in the order the cache changed (the mocker: one per
   * pass or flush at most; llama.cpp: one per change of a slot's tokens); returns the unsubscribe.
   */
  onKvEvents(listener: (batch: KvEventBatch) => void): () => void;
  /**
   * Subscribes to load changes (the mocker: at most once per pass or flush, when it
   * changed; llama.cpp: whenever a request is queued, starts, produces its first token,
   * is cancelled or ends);
   * returns the unsubscribe.
   */
  onLoad(listener: (load: EngineLoad) => void): () => void;
  /** Subscribes to forward passes (batch size, prompt tokens, preemptions, step time); returns the unsubscribe. */
  onStep(listener: (step: EngineStep) => void): () => void;
  /** BlockStored events for every cached block, parents before children (a full dump). */
  kvSnapshot(): KvEvent[];
  /** Stops the engine; streams still open fail with ArmatureError('unavailable'). */
  close(): Promise<void>;
  /** Disaggregation hooks, on engines that can export and import KV (both engines have them). */
  readonly kv?: KvTransferHooks;
}

/**
 * Shape of a KV cache's bytes. Format 'blocks' (the mocker): block layout "fully
 * contiguous" (as Dynamo's KVBM), block i at byte i × blockBytes, inside it [layer][K then
 * V][slot (token in block)][kvHeads × headDim elements]. Format 'state' (llama.cpp): the
 * model's KV shape, which a decode worker must match; the bytes are an opaque state.
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
  /**
   * Blocks holding the prompt's KV: format 'blocks', in token order, a partial last block
   * included (ceil(prompt/blockSize) ids); format 'state', the staging blocks of the state.
   */
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
  /** Format 'blocks': numLayers × 2 × kvHeads × headDim × dtypeBytes × blockSize; 'state': a staging block (256 KiB). */
  readonly blockBytes: number;
  readonly totalBlocks: number;
  /**
   * Puts the KV cache's bytes in `memory` (at least totalBlocks × blockBytes bytes; e.g. a
   * transfer library region). Call before the first request; throws if too small or called
   * twice. Until attached the mocker keeps no bytes (writes and checks are skipped), and
   * llama.cpp refuses prefills and imports (`no_kv_memory`).
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
   * ArmatureError('invalid_argument') for an empty prompt or an id already in use (the
   * mocker: also a bad id or token id; llama.cpp: also a missing stateBytes).
   */
  reserveImport(requestId: string, tokenIds: readonly number[], stateBytes?: number): ImportPlan | undefined;
  /**
   * The pulled bytes are in place. Format 'blocks': checks them (every imported token row's
   * fingerprint, when memory is attached) and registers the imported full blocks in the
   * prefix cache (BlockStored events); returns false, freeing the reservation, when any
   * byte check fails. Format 'state': always true; the state is checked when generate()
   * restores it (one that does not hold the prompt is dropped and the prompt prefilled
   * locally). After true, generate() with this requestId and firstToken decodes from the
   * imported KV without recomputing the prompt. Throws ArmatureError('not_found') if no
   * reservation.
   */
  commitImport(requestId: string): boolean;
  /** Frees a reservation, committed or not, that generate() has not taken; no-op when unknown. */
  cancelImport(requestId: string): void;
}
