// The llama.cpp engine: a GGUF model served through node-llama-cpp's prebuilt binaries
// (never built here). One context holds `sequences` sequences (slots) that llama.cpp
// evaluates together in one batch, so requests in different slots decode concurrently.
// Prefix reuse: each slot keeps the tokens of its last request in its KV cache; a new
// request takes the free slot sharing the longest prefix with its prompt, erases the rest
// and evaluates only the new tokens. The slots' token lists become KV events (KvTracker)
// so the router sees what this worker caches. Requests beyond the slots wait, in order.
// Decoding slots step together (StepGate), so each step is one batch of all their tokens
// and they ride in every batch while prompts are evaluated; prompts go in chunks of at
// least 64 tokens (batch-strategy.ts); a step's tokens reach their consumers (Outbox) only
// once the next batch is on its way.
// Disaggregation: node-llama-cpp moves KV only as a whole sequence state (a file), so a
// prefill saves the prompt's state into staging blocks of the transfer region (pinned
// until released), and a decode worker pulls those blocks, restores the state into a slot
// and checks that it holds exactly the prompt before it continues.
import { resolve } from 'node:path';
import type { LlamaContext, LlamaContextSequence, LlamaModel, Llama, Token } from 'node-llama-cpp';
import { computeBlockHashes, computeSequenceHashes, type KvEvent, type KvEventBatch } from '@armature/kv';
import { ArmatureError, asArmatureError, createLogger, type ModelCard } from '@armature/runtime';
import { OutputStream } from '../output-stream.js';
import type {
  Engine,
  EngineLoad,
  EngineOutput,
  EngineRequest,
  ImportPlan,
  KvCacheLayout,
  KvTransferHooks,
  PrefillResult,
} from '../types.js';
import { KvTracker } from './kv-tracker.js';
import { StepGate } from './step-gate.js';
import { Outbox } from './outbox.js';
import { prefillChunkStrategy } from './batch-strategy.js';
import { SequenceStates, STATE_BLOCK_BYTES, type Reservation } from './sequence-states.js';
import { compileLlamaCppOptions, type LlamaCppConfig, type LlamaCppOptions } from './options.js';
import { ensureTestModel } from './test-model.js';

const log = createLogger('engine/llamacpp');

interface Job {
  request: EngineRequest;
  /** Prompt, plus the first token when a prefill worker produced it. */
  prompt: number[];
  stream: OutputStream;
  signal: AbortSignal;
  onAbort: () => void;
  /** Set when the request was cancelled (signal or consumer). */
  cancelled: boolean;
  /** Prompt tokens not yet evaluated (for load reports). */
  pendingPrefill: number;
  /** Prefill only: the caller's request, whose stop conditions decide whether the state is exported. */
  exportFor?: EngineRequest;
  /** A remote prefill's state to restore before evaluating. */
  importFrom?: Reservation;
  /** Set when the engine shuts down under a running job: its stream fails with it. */
  failure?: ArmatureError;
}

interface Slot {
  readonly index: number;
  readonly sequence: LlamaContextSequence;
  job: Job | undefined;
  lastUsed: number;
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class LlamaCppEngine implements Engine {
  readonly card: ModelCard;
  private readonly slots: Slot[];
  private readonly waiting: Job[] = [];
  private readonly ids = new Set<string>();
  private readonly tracker: KvTracker;
  private readonly kvListeners = new Set<(batch: KvEventBatch) => void>();
  private readonly loadListeners = new Set<(load: EngineLoad) => void>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private useCounter = 0;
  /** Rows of the token embedding: the vocabulary size. */
  readonly vocabSize: number;
  readonly kv: KvTransferHooks;
  private readonly states: SequenceStates;
  /** Outputs not yet handed to their streams: they go out once the next batch is on its way. */
  private readonly outbox: Outbox<Job>;
  private readonly gate: StepGate;

  constructor(
    readonly config: LlamaCppConfig,
    readonly modelPath: string,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    sequences: LlamaContextSequence[],
    gate = new StepGate(),
  ) {
    this.gate = gate;
    this.outbox = new Outbox<Job>(gate, (job, out) => job.stream.push(out));
    this.slots = sequences.map((sequence, index) => ({ index, sequence, job: undefined, lastUsed: 0 }));
    this.tracker = new KvTracker(config.blockSize, sequences.length);
    const embedding = model.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight');
    this.vocabSize = embedding ? Number(embedding.dimensions[1]) : Number.MAX_SAFE_INTEGER;
    const contextSize = sequences[0]!.contextSize;
    const eos = [model.tokens.eos, model.tokens.eot].filter((t): t is Token => t !== null).map(Number);
    const arch = model.fileInfo.architectureMetadata as {
      block_count?: number;
      embedding_length?: number;
      attention?: { head_count?: number; head_count_kv?: number; key_length?: number };
    };
    const heads = arch.attention?.head_count ?? 1;
    const layout: KvCacheLayout = {
      numLayers: arch.block_count ?? 1,
      kvHeads: arch.attention?.head_count_kv ?? heads,
      headDim: arch.attention?.key_length ?? Math.floor((arch.embedding_length ?? heads) / heads),
      dtypeBytes: 2, // llama.cpp's default f16 KV cache
      blockSize: config.blockSize,
    };
    const bytesPerToken = layout.numLayers * 2 * layout.kvHeads * layout.headDim * layout.dtypeBytes;
    // Room for two full-context states per slot (pins and imports at once), plus headers.
    const perState = Math.ceil((contextSize * (bytesPerToken + 16) + (1 << 20)) / STATE_BLOCK_BYTES);
    this.states = new SequenceStates(2 * sequences.length * perState);
    this.kv = this.transferHooks(layout);
    this.card = {
      model: config.model,
      blockSize: config.blockSize,
      totalKvBlocks: Math.floor((contextSize * sequences.length) / config.blockSize),
      maxNumSeqs: sequences.length,
      maxNumBatchedTokens: config.batchSize,
      contextLength: contextSize,
      tokenizer: `gguf:${modelPath}`,
      // The GGUF's own chat template, rendered by the frontend from the same file.
      chatTemplate: 'gguf',
      eosTokenIds: [...new Set(eos)],
      engine: 'llamacpp',
      kvEvents: config.kvEvents,
    };
  }

  generate(request: EngineRequest, signal: AbortSignal): AsyncIterable<EngineOutput> {
    return this.start(request, signal);
  }

  private start(request: EngineRequest, signal: AbortSignal, exportFor?: EngineRequest): OutputStream {
    if (this.closed) throw new ArmatureError('unavailable', 'engine_closed', 'the engine is shutting down');
    const prompt = this.validate(request);
    const importFrom =
      request.firstToken !== undefined && this.states.hasCommittedImport(request.requestId)
        ? this.states.take(request.requestId, request.tokenIds)
        : undefined;
    const stream = new OutputStream(() => this.cancel(job, false));
    const job: Job = {
      request,
      prompt,
      stream,
      signal,
      onAbort: () => this.cancel(job, true),
      cancelled: false,
      pendingPrefill: prompt.length,
      ...(exportFor ? { exportFor } : {}),
      ...(importFrom ? { importFrom } : {}),
    };
    if (signal.aborted) {
      if (importFrom) this.states.drop(importFrom);
      stream.push({ tokenIds: [], finishReason: 'cancelled' });
      stream.end();
      return stream;
    }
    this.ids.add(request.requestId);
    signal.addEventListener('abort', job.onAbort, { once: true });
    this.waiting.push(job);
    this.pump();
    return stream;
  }

  load(): EngineLoad {
    let activeDecodeBlocks = 0;
    let activePrefillTokens = 0;
    let running = 0;
    let heldTokens = 0;
    for (const slot of this.slots) {
      if (!slot.job) continue;
      running++;
      const tokens = slot.sequence.nextTokenIndex;
      heldTokens += tokens;
      activeDecodeBlocks += Math.ceil(tokens / this.config.blockSize);
      activePrefillTokens += slot.job.pendingPrefill;
    }
    for (const job of this.waiting) activePrefillTokens += job.prompt.length;
    const capacity = this.card.contextLength * this.slots.length;
    return {
      activeDecodeBlocks,
      activePrefillTokens,
      waitingRequests: this.waiting.length,
      runningRequests: running,
      kvUsage: capacity > 0 ? heldTokens / capacity : 0,
    };
  }

  onKvEvents(listener: (batch: KvEventBatch) => void): () => void {
    this.kvListeners.add(listener);
    return () => this.kvListeners.delete(listener);
  }

  onLoad(listener: (load: EngineLoad) => void): () => void {
    this.loadListeners.add(listener);
    return () => this.loadListeners.delete(listener);
  }

  kvSnapshot(): KvEvent[] {
    return this.config.kvEvents === 'none' ? [] : this.tracker.snapshot();
  }

  /** Tokens each slot holds in its KV cache (tests and diagnostics). */
  slotTokens(): number[][] {
    return this.slots.map((s) => s.sequence.contextTokens.map(Number));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new ArmatureError('unavailable', 'engine_closed', 'the engine shut down');
    for (const job of this.waiting.splice(0)) this.finishJob(job, error);
    for (const slot of this.slots) {
      if (!slot.job) continue;
      slot.job.cancelled = true;
      slot.job.failure = error;
    }
    await Promise.allSettled([...this.running]);
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
    this.states.close();
  }

  /** Why `token`, the `generated`-th output token of `request`, ends it (undefined: it goes on). */
  private finishReasonOf(request: EngineRequest, token: Token, generated: number): 'stop' | 'length' | undefined {
    if (!request.stop.ignoreEos && this.model.isEogToken(token)) return 'stop';
    if (request.stop.stopTokenIds.includes(Number(token))) return 'stop';
    if (generated >= request.stop.maxTokens) return 'length';
    return undefined;
  }

  /** Restores a pulled state into the slot; one that does not hold exactly the prompt is dropped. */
  private async restore(seq: LlamaContextSequence, job: Job): Promise<void> {
    const reservation = job.importFrom!;
    job.importFrom = undefined;
    if (!(await this.states.restore(seq, reservation))) {
      log.warn('an imported KV state does not hold the prompt; prefilling locally', {
        requestId: job.request.requestId,
      });
    }
  }

  private transferHooks(layout: KvCacheLayout): KvTransferHooks {
    const states = this.states;
    return {
      format: 'state',
      layout,
      blockBytes: STATE_BLOCK_BYTES,
      totalBlocks: states.totalBlocks,
      attachMemory: (memory) => states.attach(memory),
      prefill: (request, signal) => this.prefill(request, signal),
      release: (requestId) => states.release(requestId),
      pinned: () => states.pinned(),
      reserveImport: (requestId, tokenIds, stateBytes): ImportPlan | undefined => {
        if (tokenIds.length === 0) throw new ArmatureError('invalid_argument', 'empty_prompt', 'the prompt is empty');
        if (this.ids.has(requestId) || states.holds(requestId))
          throw new ArmatureError(
            'invalid_argument',
            'duplicate_request_id',
            `request ${requestId} is already running`,
          );
        if (!(stateBytes && stateBytes > 0))
          throw new ArmatureError('invalid_argument', 'missing_state_size', 'a llama.cpp import needs the state size');
        return states.reserve(requestId, tokenIds, stateBytes);
      },
      // The state is checked when restored: the slot must then hold exactly the prompt.
      commitImport: (requestId) => (states.commit(requestId), true),
      cancelImport: (requestId) => states.cancel(requestId),
    };
  }

  private async prefill(request: EngineRequest, signal: AbortSignal): Promise<PrefillResult> {
    if (!this.states.attached)
      throw new ArmatureError('failed_precondition', 'no_kv_memory', 'no transfer region is attached to this engine');
    if (request.firstToken !== undefined)
      throw new ArmatureError(
        'invalid_argument',
        'first_token_on_prefill',
        'a prefill request cannot carry a first token',
      );
    const stream = this.start({ ...request, stop: { ...request.stop, maxTokens: 1 } }, signal, request);
    const outputs: EngineOutput[] = [];
    for await (const out of stream) outputs.push(out);
    const firstToken = outputs.flatMap((o) => o.tokenIds)[0];
    if (firstToken === undefined || outputs.some((o) => o.finishReason === 'cancelled')) {
      this.states.release(request.requestId); // an export that finished after the cancellation
      throw new ArmatureError('cancelled', 'request_cancelled', 'the prefill was cancelled');
    }
    const pin = this.states.pin(request.requestId);
    const result: PrefillResult = {
      firstToken,
      cachedTokens: outputs[0]!.cachedTokens ?? 0,
      promptTokens: request.tokenIds.length,
      blockIds: pin ? [...pin.blocks] : [],
      blockHashes: computeSequenceHashes(computeBlockHashes(request.tokenIds, this.config.blockSize)),
    };
    if (pin) result.stateBytes = pin.bytes;
    else result.finishReason = this.finishReasonOf(request, firstToken as Token, 1) ?? 'length';
    return result;
  }

  /** Checks a request against the model; returns the tokens to evaluate. */
  private validate(request: EngineRequest): number[] {
    const invalid = (reason: string, message: string, param?: string): ArmatureError =>
      new ArmatureError('invalid_argument', reason, message, param === undefined ? {} : { param });
    const { requestId, tokenIds, stop, firstToken } = request;
    if (typeof requestId !== 'string' || requestId === '')
      throw invalid('invalid_request_id', 'request id must be a non-empty string');
    const takesImport = firstToken !== undefined && this.states.hasCommittedImport(requestId);
    if (this.ids.has(requestId) || (this.states.holds(requestId) && !takesImport))
      throw invalid('duplicate_request_id', `request ${requestId} is already running`);
    if (tokenIds.length === 0) throw invalid('empty_prompt', 'the prompt is empty', 'prompt');
    const vocab = this.vocabSize;
    const prompt = firstToken === undefined ? [...tokenIds] : [...tokenIds, firstToken];
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab)
        throw invalid('invalid_token_id', `token id ${id} is outside the vocabulary (${vocab})`, 'prompt');
    }
    if (!Number.isSafeInteger(stop.maxTokens) || stop.maxTokens < 1)
      throw invalid('invalid_max_tokens', 'max_tokens must be a positive integer', 'max_tokens');
    if (firstToken !== undefined && stop.maxTokens <= 1)
      throw invalid('nothing_to_decode', 'the first token already ends the request', 'max_tokens');
    if (tokenIds.length + stop.maxTokens > this.card.contextLength) {
      throw invalid(
        'context_length_exceeded',
        `prompt (${tokenIds.length} tokens) + max_tokens (${stop.maxTokens}) exceeds the context length ${this.card.contextLength}`,
        'max_tokens',
      );
    }
    return prompt;
  }

  /** Starts waiting requests on free slots, oldest first, each on the slot sharing its longest prefix. */
  private pump(): void {
    while (!this.closed && this.waiting.length > 0) {
      const free = this.slots.filter((s) => !s.job);
      if (free.length === 0) break;
      const job = this.waiting.shift()!;
      let best = free[0]!;
      let bestShared = -1;
      for (const slot of free) {
        const shared = commonPrefix(slot.sequence.contextTokens, job.prompt);
        // Longest shared prefix; among equals, the least recently used slot keeps the others' caches.
        if (shared > bestShared || (shared === bestShared && slot.lastUsed < best.lastUsed)) {
          best = slot;
          bestShared = shared;
        }
      }
      best.job = job;
      best.lastUsed = ++this.useCounter;
      const run = this.serve(best, job).finally(() => {
        this.running.delete(run);
        best.job = undefined;
        this.emitLoad();
        this.pump();
      });
      this.running.add(run);
    }
    this.emitLoad();
  }

  private async serve(slot: Slot, job: Job): Promise<void> {
    const { request, prompt } = job;
    const seq = slot.sequence;
    try {
      if (job.importFrom) await this.restore(seq, job);
      // At least one token must be evaluated to sample from, so a fully cached prompt re-evaluates its last token.
      const reused = Math.min(commonPrefix(seq.contextTokens, prompt), prompt.length - 1);
      if (seq.nextTokenIndex > reused) await seq.eraseContextTokenRanges([{ start: reused, end: seq.nextTokenIndex }]);
      this.track(slot, prompt.slice(0, reused));
      job.pendingPrefill = prompt.length - reused;
      const { temperature, topP, topK, seed } = request.sampling;
      let generated = request.firstToken === undefined ? 0 : 1;
      let first = true;
      let lastToken: Token | undefined;
      let finished = false;
      const tokens = seq.evaluate(prompt.slice(reused) as Token[], {
        // Without it node-llama-cpp ends the stream silently at EOS, and ignore_eos could not go past it.
        yieldEogToken: true,
        temperature: temperature ?? 1,
        ...(topP === undefined ? {} : { topP }),
        ...(topK === undefined ? {} : { topK }),
        ...(seed === undefined ? {} : { seed }),
      });
      for await (const raw of tokens) {
        this.gate.landed(slot.index);
        if (job.cancelled) break;
        const token = Number(raw);
        lastToken = raw;
        const out: EngineOutput = { tokenIds: [token] };
        if (first) {
          first = false;
          job.pendingPrefill = 0;
          out.cachedTokens = Math.min(reused, request.tokenIds.length);
          out.promptTokens = request.tokenIds.length;
          this.track(slot, prompt);
          this.emitLoad();
        }
        generated++;
        const finish = this.finishReasonOf(request, raw, generated);
        if (finish) out.finishReason = finish;
        this.outbox.add(job, out);
        if (out.finishReason) {
          finished = true;
          break;
        }
        // With the other decoding slots, so that their next tokens share a batch.
        await this.gate.step(slot.index);
        if (job.cancelled) break;
      }
      this.gate.leave(slot.index);
      if (!finished && !job.cancelled && !first) {
        // The evaluation ended on its own (the sequence is full): say so rather than leave the stream open-ended.
        this.outbox.add(job, { tokenIds: [], finishReason: 'length' });
      }
      if (!first || job.cancelled) this.track(slot, seq.contextTokens);
      if (job.exportFor && !first && !job.cancelled && !this.finishReasonOf(job.exportFor, lastToken!, 1))
        await this.states.export(seq, job.request.requestId);
      this.finishJob(job);
    } catch (err) {
      this.gate.leave(slot.index);
      log.error('llama.cpp evaluation failed', { requestId: request.requestId, err });
      // What the slot holds after a failure is unknown: start it afresh.
      await seq.clearHistory().catch(() => {});
      this.track(slot, []);
      this.finishJob(job, asArmatureError(err));
    }
  }

  private cancel(job: Job, notify: boolean): void {
    if (job.cancelled || job.stream.closed) return;
    job.cancelled = true;
    const waitingAt = this.waiting.indexOf(job);
    if (waitingAt >= 0) this.waiting.splice(waitingAt, 1);
    if (notify) {
      this.outbox.flush(job);
      job.stream.push({ tokenIds: [], finishReason: 'cancelled' });
    }
    // A running job's slot is freed by serve() after the token in flight.
    if (waitingAt >= 0) this.finishJob(job);
    this.emitLoad();
  }

  private finishJob(job: Job, error = job.failure): void {
    this.outbox.flush(job);
    // An imported state never restored (cancelled while queued, a failure, shutdown) frees its staging blocks.
    if (job.importFrom) {
      this.states.drop(job.importFrom);
      job.importFrom = undefined;
    }
    job.signal.removeEventListener('abort', job.onAbort);
    this.ids.delete(job.request.requestId);
    if (error) job.stream.fail(error);
    else job.stream.end();
  }

  private track(slot: Slot, tokens: readonly (Token | number)[]): void {
    if (this.config.kvEvents === 'none') return;
    this.tracker.update(slot.index, tokens.map(Number));
    const events = this.tracker.drain();
    if (events.length === 0) return;
    const batch: KvEventBatch = { ts: Date.now() / 1000, events, dpRank: this.config.dpRank };
    for (const listener of this.kvListeners) {
      try {
        listener(batch);
      } catch (err) {
        log.warn('KV event listener threw', { err });
      }
    }
  }

  private emitLoad(): void {
    if (this.loadListeners.size === 0) return;
    const load = this.load();
    for (const listener of this.loadListeners) {
      try {
        listener(load);
      } catch (err) {
        log.warn('load listener threw', { err });
      }
    }
  }
}

/** Loads the model (the generated test model unless `modelPath` is set) and creates the engine. */
export async function createLlamaCppEngine(options: LlamaCppOptions = {}): Promise<LlamaCppEngine> {
  const config = compileLlamaCppOptions(options);
  // Absolute: the card names the file, and the frontend loads its tokenizer from it.
  const modelPath = resolve(config.modelPath ?? (await ensureTestModel()));
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({
    gpu: config.gpu,
    build: 'never',
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      const text = message.trim();
      if (text) log.warn('llama.cpp', { level, message: text });
    },
  });
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath, gpuLayers: config.gpu === false ? 0 : config.gpuLayers });
  } catch (err) {
    await llama.dispose();
    throw new ArmatureError('failed_precondition', 'model_load_failed', `cannot load the GGUF model ${modelPath}`, {
      detail: (err as Error).message,
      cause: err,
    });
  }
  const contextSize = Math.min(config.contextSize, model.trainContextSize);
  const gate = new StepGate(config.lockstep);
  const strategy = prefillChunkStrategy(config.minPrefillChunk, (decodes) => gate.holdFor(decodes));
  const context = await model.createContext({
    sequences: config.sequences,
    contextSize,
    batchSize: config.batchSize,
    threads: config.threads,
    batching: {
      dispatchSchedule: gate.dispatchSchedule,
      itemPrioritizationStrategy: (batch) => {
        const chosen = strategy(batch);
        if (chosen.length > 0) gate.batchStarted();
        return chosen;
      },
    },
  });
  const sequences = Array.from({ length: config.sequences }, () => context.getSequence());
  log.info('model loaded', {
    modelPath,
    gpu: llama.gpu,
    gpuLayers: model.gpuLayers,
    sequences: config.sequences,
    contextSize: sequences[0]!.contextSize,
    threads: config.threads,
  });
  return new LlamaCppEngine(config, modelPath, llama, model, context, sequences, gate);
}
