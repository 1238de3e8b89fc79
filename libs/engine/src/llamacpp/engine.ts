// The llama.cpp engine: a GGUF model served through node-llama-cpp. This file is its Engine
// face: it validates requests (request.ts, against the card and the model's vocabulary),
// hands them to the slots (slot-runner.ts: slot choice by shared prefix, the lock-step
// generation loop, cancellation), turns the slots' token lists into KV events (KvTracker)
// so the router sees what this worker caches, reports load, and shuts the parts down in
// order. Loading is load.ts's (createLlamaCppEngine), what the model file says is
// model-card.ts's, disaggregation is kv-hooks.ts's (through SequenceStates).
import type { LlamaContext, LlamaContextSequence, LlamaModel, Llama, Token } from 'node-llama-cpp';
import type { KvEvent, KvEventBatch } from '@armature/kv';
import { ArmatureError, createLogger, type ModelCard } from '@armature/runtime';
import type { OutputStream } from '../output-stream.js';
import { invalidRequest, validateEngineRequest } from '../request.js';
import type { Engine, EngineLoad, EngineOutput, EngineRequest, EngineStep, KvTransferHooks } from '../types.js';
import { KvTracker } from './kv-tracker.js';
import { LlamaCppKvHooks } from './kv-hooks.js';
import { describeModel } from './model-card.js';
import type { LlamaCppConfig } from './options.js';
import { SequenceStates } from './sequence-states.js';
import { SlotRunner } from './slot-runner.js';
import { StepGate } from './step-gate.js';

const log = createLogger('engine/llamacpp');

export class LlamaCppEngine implements Engine {
  readonly card: ModelCard;
  /** Rows of the token embedding: the vocabulary size. */
  readonly vocabSize: number;
  readonly kv: KvTransferHooks;
  private readonly runner: SlotRunner;
  private readonly tracker: KvTracker;
  private readonly kvListeners = new Set<(batch: KvEventBatch) => void>();
  private readonly loadListeners = new Set<(load: EngineLoad) => void>();
  private readonly stepListeners = new Set<(step: EngineStep) => void>();
  private readonly states: SequenceStates;
  private closed = false;

  constructor(
    readonly config: LlamaCppConfig,
    readonly modelPath: string,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    sequences: LlamaContextSequence[],
    gate = new StepGate(),
  ) {
    const info = describeModel(config, modelPath, model, sequences);
    this.card = info.card;
    this.vocabSize = info.vocabSize;
    this.tracker = new KvTracker(config.blockSize, sequences.length);
    gate.onBatchChosen = (step) => {
      for (const listener of this.stepListeners) listener(step);
    };
    this.states = new SequenceStates(info.stateBlocks);
    this.runner = new SlotRunner({
      sequences,
      gate,
      states: this.states,
      blockSize: config.blockSize,
      contextLength: this.card.contextLength,
      finishReasonOf: (request, token, generated) => this.finishReasonOf(request, token, generated),
      slotTokens: (slot, tokens) => this.track(slot, tokens),
      loadChanged: () => this.emitLoad(),
    });
    this.kv = new LlamaCppKvHooks(
      {
        states: this.states,
        blockSize: config.blockSize,
        isActive: (requestId) => this.runner.has(requestId),
        start: (request, signal, exportFor) => this.start(request, signal, exportFor),
        finishReasonOf: (request, token, generated) => this.finishReasonOf(request, token, generated),
      },
      info.layout,
    );
  }

  generate(request: EngineRequest, signal: AbortSignal): AsyncIterable<EngineOutput> {
    return this.start(request, signal);
  }

  private start(request: EngineRequest, signal: AbortSignal, exportFor?: EngineRequest): OutputStream {
    if (this.closed) throw new ArmatureError('unavailable', 'engine_closed', 'the engine is shutting down');
    const prompt = this.validate(request, exportFor !== undefined);
    const importFrom =
      request.firstToken !== undefined && this.states.hasCommittedImport(request.requestId)
        ? this.states.take(request.requestId, request.tokenIds)
        : undefined;
    return this.runner.enqueue({
      request,
      prompt,
      signal,
      ...(exportFor ? { exportFor } : {}),
      ...(importFrom ? { importFrom } : {}),
    });
  }

  load(): EngineLoad {
    return this.runner.load();
  }

  onKvEvents(listener: (batch: KvEventBatch) => void): () => void {
    this.kvListeners.add(listener);
    return () => this.kvListeners.delete(listener);
  }

  onLoad(listener: (load: EngineLoad) => void): () => void {
    this.loadListeners.add(listener);
    return () => this.loadListeners.delete(listener);
  }

  onStep(listener: (step: EngineStep) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  kvSnapshot(): KvEvent[] {
    return this.config.kvEvents === 'none' ? [] : this.tracker.snapshot();
  }

  /** Tokens each slot holds in its KV cache (tests and diagnostics). */
  slotTokens(): number[][] {
    return this.runner.slots.map((s) => s.sequence.contextTokens.map(Number));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.runner.close(new ArmatureError('unavailable', 'engine_closed', 'the engine shut down'));
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

  /** Checks a request against the model and what runs; returns the tokens to evaluate. */
  private validate(request: EngineRequest, prefillOnly: boolean): number[] {
    validateEngineRequest(request, this.card, { vocabSize: this.vocabSize, prefillOnly });
    const { requestId, tokenIds, firstToken } = request;
    const takesImport = firstToken !== undefined && this.states.hasCommittedImport(requestId);
    if (this.runner.has(requestId) || (this.states.holds(requestId) && !takesImport))
      throw invalidRequest('duplicate_request_id', `request ${requestId} is already running`);
    return firstToken === undefined ? [...tokenIds] : [...tokenIds, firstToken];
  }

  private track(slot: number, tokens: readonly (Token | number)[]): void {
    if (this.config.kvEvents === 'none') return;
    this.tracker.update(slot, tokens.map(Number));
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
