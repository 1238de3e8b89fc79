// The mocker's engine core: pure and synchronous, no timers and no clock of its own, so the
// live engine (engine.ts) and an offline virtual-time simulator drive the same code. Each
// step() is one forward pass scheduled like vLLM's v1 scheduler: running requests first
// (decode tokens and unfinished prefill chunks, preempting the newest running request when
// blocks run out), then waiting requests FCFS, all under max_num_seqs and
// max_num_batched_tokens. It returns the pass's simulated duration and outputs; it does not
// sleep, deliver streams or handle signals.
import { computeBlockHashes, computeSequenceHashes, type KvEvent, type KvEventBatch } from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import type { EngineLoad, EngineOutput, EngineRequest, FinishReason } from '../types.js';
import { BlockManager } from './block-manager.js';
import type { MockerConfig } from './options.js';
import { TokenSampler, requestSeed } from './sampler.js';

export interface MockerHooks {
  /** KV events of one step (or of a flush), in order. */
  onKvEvents?: (batch: KvEventBatch) => void;
  /** The load, when it changed since the last call (at most once per step or flush). */
  onLoad?: (load: EngineLoad) => void;
}

export interface MockerStepOutput {
  requestId: string;
  output: EngineOutput;
}

export interface MockerStep {
  /** Simulated duration of the pass, ms. */
  durationMs: number;
  /** One output per request that produced a token in the pass. */
  outputs: MockerStepOutput[];
  /** New tokens computed as prefill in the pass (chunks and recomputation included). */
  prefillTokens: number;
  /** Sequences that decoded a token in the pass. */
  decodeSequences: number;
  /** Requests preempted in the pass (they wait again and recompute). */
  preempted: string[];
}

interface Sequence {
  readonly request: EngineRequest;
  readonly id: string;
  /** Prompt then generated tokens. */
  readonly tokens: number[];
  readonly promptLength: number;
  /** Sequence hashes of every full block of `tokens`. */
  readonly hashes: bigint[];
  readonly sampler: TokenSampler;
  readonly stopTokenIds: ReadonlySet<number>;
  /** Tokens whose KV is computed in the blocks currently held. */
  computed: number;
  generated: number;
  /** All tokens but the last sampled one are computed: the next pass decodes. */
  prefilled: boolean;
  /** Prompt tokens served from the prefix cache at first admission. */
  cachedTokens: number;
  admitted: boolean;
  firstOutputSent: boolean;
}

const MAX_TOKEN_ID = 2 ** 32 - 1;

function invalid(reason: string, message: string, param?: string): ArmatureError {
  return new ArmatureError('invalid_argument', reason, message, param === undefined ? {} : { param });
}

export class MockerCore {
  readonly blocks: BlockManager;
  private readonly sequences = new Map<string, Sequence>();
  /** FCFS; preempted requests go back to the front. */
  private waiting: Sequence[] = [];
  /** In admission order; the last is preempted first. */
  private running: Sequence[] = [];
  private lastLoad: EngineLoad | undefined;
  private imports = 0;

  constructor(
    readonly config: MockerConfig,
    private readonly hooks: MockerHooks = {},
  ) {
    this.blocks = new BlockManager({
      blockSize: config.blockSize,
      totalBlocks: config.totalKvBlocks,
      enablePrefixCaching: config.enablePrefixCaching,
      recordEvents: hooks.onKvEvents !== undefined,
    });
  }

  /** Queues a request; throws ArmatureError('invalid_argument') for one that can never run. */
  add(request: EngineRequest, nowMs: number): void {
    void nowMs; // arrival time: reserved for queue-time statistics
    const { requestId, tokenIds, stop, sampling } = request;
    const { contextLength, blockSize, totalKvBlocks } = this.config;
    if (typeof requestId !== 'string' || requestId === '')
      throw invalid('invalid_request_id', 'request id must be a non-empty string');
    if (this.sequences.has(requestId)) throw invalid('duplicate_request_id', `request ${requestId} is already running`);
    if (tokenIds.length === 0) throw invalid('empty_prompt', 'the prompt is empty', 'prompt');
    for (const id of tokenIds) {
      if (!Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID)
        throw invalid('invalid_token_id', `invalid token id ${id}`, 'prompt');
    }
    if (!Number.isSafeInteger(stop.maxTokens) || stop.maxTokens < 1)
      throw invalid('invalid_max_tokens', 'max_tokens must be a positive integer', 'max_tokens');
    if (tokenIds.length + stop.maxTokens > contextLength) {
      throw invalid(
        'context_length_exceeded',
        `prompt (${tokenIds.length} tokens) + max_tokens (${stop.maxTokens}) exceeds the context length ${contextLength}`,
        'max_tokens',
      );
    }
    // The last sampled token is never fed back, so prompt + max_tokens - 1 tokens need slots.
    if (Math.ceil((tokenIds.length + stop.maxTokens - 1) / blockSize) > totalKvBlocks) {
      throw invalid(
        'kv_capacity_exceeded',
        `the request needs more than the ${totalKvBlocks} KV blocks this engine has`,
        'max_tokens',
      );
    }
    if (sampling.seed !== undefined && !Number.isFinite(sampling.seed))
      throw invalid('invalid_seed', 'seed must be a finite number', 'seed');

    const tokens = tokenIds.slice();
    const seq: Sequence = {
      request,
      id: requestId,
      tokens,
      promptLength: tokens.length,
      hashes: computeSequenceHashes(computeBlockHashes(tokens, blockSize)),
      sampler: new TokenSampler(requestSeed(tokens, sampling.seed), {
        vocabRange: this.config.vocabRange,
        eosTokenId: this.config.eosTokenIds[0]!,
        eosProbability: this.config.eosProbability,
        ignoreEos: stop.ignoreEos,
      }),
      stopTokenIds: new Set(stop.stopTokenIds),
      computed: 0,
      generated: 0,
      prefilled: false,
      cachedTokens: 0,
      admitted: false,
      firstOutputSent: false,
    };
    this.sequences.set(requestId, seq);
    this.waiting.push(seq);
  }

  /**
   * Registers the full blocks of `tokenIds` as cached, as if computed here: KV blocks pulled
   * from a prefill worker (disaggregated serving). They stay in the prefix cache, evictable,
   * until a request uses them. Returns the blocks newly registered; 0 when prefix caching is
   * off or the free blocks do not suffice (the request then prefills locally).
   */
  importPrefix(tokenIds: readonly number[], nowMs: number): number {
    const { blockSize } = this.config;
    if (!this.config.enablePrefixCaching) return 0;
    const hashes = computeSequenceHashes(computeBlockHashes(tokenIds, blockSize));
    if (hashes.length === 0) return 0;
    const held = this.blocks.matchPrefix(hashes);
    if (held === hashes.length) return 0;
    const importId = `\u0000import:${++this.imports}`;
    const tokens = hashes.length * blockSize;
    if (!this.blocks.allocate(importId, tokens, hashes.slice(0, held))) return 0;
    this.blocks.commit(importId, tokenIds, hashes, tokens);
    this.blocks.free(importId);
    this.flush(nowMs);
    return hashes.length - held;
  }

  /** Drops a request wherever it is and frees its blocks; false if unknown (or finished). */
  cancel(requestId: string): boolean {
    const seq = this.sequences.get(requestId);
    if (!seq) return false;
    this.sequences.delete(requestId);
    const running = this.running.indexOf(seq);
    if (running >= 0) {
      this.running.splice(running, 1);
      this.blocks.free(requestId);
    } else {
      this.waiting.splice(this.waiting.indexOf(seq), 1);
    }
    return true;
  }

  has(requestId: string): boolean {
    return this.sequences.has(requestId);
  }

  /** Where a live request is: queued ('waiting') or holding blocks ('running'). */
  stateOf(requestId: string): 'waiting' | 'running' | undefined {
    const seq = this.sequences.get(requestId);
    if (!seq) return undefined;
    return this.blocks.hasSequence(requestId) ? 'running' : 'waiting';
  }

  hasWork(): boolean {
    return this.running.length > 0 || this.waiting.length > 0;
  }

  load(): EngineLoad {
    let activePrefillTokens = 0;
    for (const seq of this.running) if (!seq.prefilled) activePrefillTokens += seq.tokens.length - seq.computed;
    for (const seq of this.waiting) activePrefillTokens += seq.tokens.length;
    return {
      activeDecodeBlocks: this.blocks.usedBlocks,
      activePrefillTokens,
      waitingRequests: this.waiting.length,
      runningRequests: this.running.length,
      kvUsage: this.blocks.usedBlocks / this.blocks.totalBlocks,
    };
  }

  /** BlockStored events for every cached block, parents before children. */
  kvSnapshot(): KvEvent[] {
    return this.blocks.snapshot();
  }

  /** Runs one forward pass starting at `nowMs`. */
  step(nowMs: number): MockerStep {
    if (!this.hasWork()) {
      this.flush(nowMs);
      return { durationMs: 0, outputs: [], prefillTokens: 0, decodeSequences: 0, preempted: [] };
    }
    const { scheduled, preempted } = this.schedule();
    if (scheduled.length === 0) throw new Error('mocker scheduler made no progress');

    let prefillTokens = 0;
    let decodeSequences = 0;
    for (const { seq, newTokens } of scheduled) {
      if (seq.prefilled) decodeSequences++;
      else prefillTokens += newTokens;
    }
    const kvUsage = this.blocks.usedBlocks / this.blocks.totalBlocks;
    const durationMs = this.config.perfModel.stepMs({ prefillTokens, decodeSequences, kvUsage });

    const outputs: MockerStepOutput[] = [];
    let finished = false;
    for (const { seq, newTokens } of scheduled) {
      seq.computed += newTokens;
      this.blocks.commit(seq.id, seq.tokens, seq.hashes, seq.computed);
      if (seq.computed < seq.tokens.length) continue; // a prefill chunk: no token yet
      const output = this.sample(seq);
      outputs.push({ requestId: seq.id, output });
      if (output.finishReason) {
        finished = true;
        this.sequences.delete(seq.id);
        this.blocks.free(seq.id);
      }
    }
    if (finished) this.running = this.running.filter((seq) => this.sequences.has(seq.id));
    this.flush(nowMs);
    return { durationMs, outputs, prefillTokens, decodeSequences, preempted };
  }

  /** Publishes pending KV events and, if it changed, the load. Called by step(); call it when idle. */
  flush(nowMs: number): void {
    const events = this.blocks.drainEvents();
    if (events.length > 0) this.hooks.onKvEvents?.({ ts: nowMs / 1000, events, dpRank: this.config.dpRank });
    const load = this.load();
    if (!this.lastLoad || !sameLoad(load, this.lastLoad)) {
      this.lastLoad = load;
      this.hooks.onLoad?.(load);
    }
  }

  /** Throws if the scheduler's or the block manager's bookkeeping is inconsistent. */
  checkInvariants(): void {
    this.blocks.checkInvariants();
    const fail = (message: string): never => {
      throw new Error(`mocker invariant violated: ${message}`);
    };
    if (this.running.length > this.config.maxNumSeqs) fail(`${this.running.length} running > max_num_seqs`);
    if (this.running.length + this.waiting.length !== this.sequences.size) fail('a request is lost or queued twice');
    for (const seq of this.running) {
      if (!this.blocks.hasSequence(seq.id)) fail(`running ${seq.id} holds no blocks`);
      const held = this.blocks.sequenceBlockIds(seq.id)!.length;
      if (held < this.blocks.blocksFor(seq.computed))
        fail(`running ${seq.id} computed ${seq.computed} tokens in ${held} blocks`);
    }
    for (const seq of this.waiting) {
      if (this.blocks.hasSequence(seq.id)) fail(`waiting ${seq.id} holds blocks`);
      if (seq.computed !== 0) fail(`waiting ${seq.id} has computed tokens`);
    }
  }

  private schedule(): { scheduled: Array<{ seq: Sequence; newTokens: number }>; preempted: string[] } {
    const scheduled: Array<{ seq: Sequence; newTokens: number }> = [];
    const preempted: string[] = [];
    let budget = this.config.maxNumBatchedTokens;

    // Running requests first: one decode token each, or the next chunk of their prefill.
    for (let i = 0; i < this.running.length && budget > 0;) {
      const seq = this.running[i]!;
      const newTokens = Math.min(seq.tokens.length - seq.computed, budget);
      let fits = this.blocks.allocate(seq.id, seq.computed + newTokens);
      while (!fits) {
        const victim = this.running.pop()!;
        this.preempt(victim);
        preempted.push(victim.id);
        if (victim === seq) break;
        fits = this.blocks.allocate(seq.id, seq.computed + newTokens);
      }
      if (!fits) break;
      scheduled.push({ seq, newTokens });
      budget -= newTokens;
      i++;
    }

    // Then waiting requests, FCFS, unless this pass already had to preempt.
    if (preempted.length > 0) return { scheduled, preempted };
    const { blockSize } = this.config;
    while (this.waiting.length > 0 && budget > 0 && this.running.length < this.config.maxNumSeqs) {
      const seq = this.waiting[0]!;
      // At least one token must be computed to produce logits, so a fully cached prompt
      // recomputes its last block.
      const cachedBlocks = this.blocks.matchPrefix(seq.hashes, Math.floor((seq.tokens.length - 1) / blockSize));
      const computed = cachedBlocks * blockSize;
      const newTokens = Math.min(seq.tokens.length - computed, budget);
      if (!this.blocks.allocate(seq.id, computed + newTokens, seq.hashes.slice(0, cachedBlocks))) break;
      this.waiting.shift();
      this.running.push(seq);
      seq.computed = computed;
      if (!seq.admitted) {
        seq.admitted = true;
        seq.cachedTokens = computed;
      }
      scheduled.push({ seq, newTokens });
      budget -= newTokens;
    }
    return { scheduled, preempted };
  }

  private preempt(seq: Sequence): void {
    this.blocks.free(seq.id);
    seq.computed = 0;
    seq.prefilled = false;
    this.waiting.unshift(seq);
  }

  private sample(seq: Sequence): EngineOutput {
    const token = seq.sampler.next();
    seq.tokens.push(token);
    seq.generated++;
    seq.prefilled = true;
    const { blockSize } = this.config;
    if (seq.tokens.length % blockSize === 0) {
      const start = seq.tokens.length - blockSize;
      const local = computeBlockHashes(seq.tokens.slice(start), blockSize)[0]!;
      const parent = seq.hashes[seq.hashes.length - 1];
      seq.hashes.push(parent === undefined ? local : computeSequenceHashes([parent, local])[1]!);
    }
    let finishReason: FinishReason | undefined;
    const { stop } = seq.request;
    if (!stop.ignoreEos && this.config.eosTokenIds.includes(token)) finishReason = 'stop';
    else if (seq.stopTokenIds.has(token)) finishReason = 'stop';
    else if (seq.generated >= stop.maxTokens) finishReason = 'length';

    const output: EngineOutput = { tokenIds: [token] };
    if (!seq.firstOutputSent) {
      seq.firstOutputSent = true;
      output.cachedTokens = seq.cachedTokens;
      output.promptTokens = seq.promptLength;
    }
    if (finishReason) output.finishReason = finishReason;
    return output;
  }
}

function sameLoad(a: EngineLoad, b: EngineLoad): boolean {
  return (
    a.activeDecodeBlocks === b.activeDecodeBlocks &&
    a.activePrefillTokens === b.activePrefillTokens &&
    a.waitingRequests === b.waitingRequests &&
    a.runningRequests === b.runningRequests &&
    a.kvUsage === b.kvUsage
  );
}
