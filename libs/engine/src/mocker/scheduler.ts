// The mocker's engine core: pure and synchronous, no timers and no clock of its own, so the
// live engine (engine.ts) and an offline virtual-time simulator drive the same code. Each
// step() is one forward pass: pass-planner.ts picks what it computes (vLLM v1's policy:
// running first, preempting the newest when blocks run out, then ready imports, then
// waiting FCFS, under max_num_seqs and max_num_batched_tokens); the perf model times it;
// then every sequence that completed its tokens samples one. It returns the pass's
// simulated duration and outputs; it does not sleep, deliver streams or handle signals.
//
// Disaggregated serving adds holders of blocks that are neither waiting nor running
// (pinned prefills and import reservations: kv-handoff.ts) and ready imports (decode
// requests whose KV was imported, queued ahead of waiting for a running slot). When memory
// is attached, every token whose KV a pass computes gets its bytes written (kv-memory.ts),
// and imported bytes are checked.
import type { KvEvent, KvEventBatch } from '@armature/kv';
import { ArmatureError, type ModelCard } from '@armature/runtime';
import { invalidRequest, validateEngineRequest, validatePrompt } from '../request.js';
import type { EngineLoad, EngineOutput, EngineRequest, ImportPlan, PrefillResult } from '../types.js';
import { BlockManager } from './block-manager.js';
import { checkCoreInvariants } from './core-invariants.js';
import { KvHandoff } from './kv-handoff.js';
import { KvMemory, kvBlockBytes } from './kv-memory.js';
import { mockerCard, type MockerConfig } from './options.js';
import { planPass, type SchedulerQueues } from './pass-planner.js';
import { appendToken, finishReasonOf, newSequence, sameTokens, type Sequence } from './sequence.js';

export interface MockerHooks {
  /** KV events of one step (or of a flush), in order. */
  onKvEvents?: (batch: KvEventBatch) => void;
  /** The load, when it changed since the last call (at most once per step or flush). */
  onLoad?: (load: EngineLoad) => void;
}

export interface MockerAddOptions {
  /**
   * Prefill only (disaggregated serving): the request runs until its first token, then leaves
   * the scheduler with its prompt's blocks pinned under its id until release() (freed at once
   * when the first token ends it). Its one output carries `prefill`.
   */
  prefillOnly?: boolean;
}

export interface MockerStepOutput {
  requestId: string;
  output: EngineOutput;
  /** A prefill-only request's result, on its one output (whose finishReason is the caller's). */
  prefill?: PrefillResult;
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
  /** Sequences in the pass's batch (prefilling and decoding). */
  sequences: number;
  /** Requests preempted in the pass (they wait again and recompute). */
  preempted: string[];
}

export class MockerCore {
  readonly blocks: BlockManager;
  private readonly sequences = new Map<string, Sequence>();
  private readonly queues: SchedulerQueues = { waiting: [], running: [], readyImports: [] };
  private readonly handoff: KvHandoff;
  /** What requests are checked against (the card the engine publishes). */
  private readonly card: ModelCard;
  /**
   * The last pass could schedule nothing because pins or import reservations hold the blocks
   * it needs: no work until something changes (a release, a cancel, a new request).
   */
  private stalled = false;
  private memory: KvMemory | undefined;
  private lastLoad: EngineLoad | undefined;

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
    this.handoff = new KvHandoff(this.blocks, config.blockSize);
    this.card = mockerCard(config);
  }

  /**
   * Queues a request; throws ArmatureError('invalid_argument') for one that can never run. A
   * request with firstToken continues after it: from its committed import if there is one
   * (decoding at once), else by prefilling prompt + firstToken here.
   */
  add(request: EngineRequest, nowMs: number, options: MockerAddOptions = {}): void {
    void nowMs; // arrival time: reserved for queue-time statistics
    const { requestId, tokenIds, firstToken } = request;
    const prefillOnly = options.prefillOnly ?? false;
    validateEngineRequest(request, this.card, { prefillOnly, kvCapacity: true });
    const reservation = firstToken === undefined ? undefined : this.handoff.committed(requestId);
    const takesImport = reservation !== undefined;
    if (!takesImport && this.inUse(requestId))
      throw invalidRequest('duplicate_request_id', `request ${requestId} is already running`);
    if (takesImport && !sameTokens(reservation.tokens, tokenIds)) {
      this.cancelImport(requestId, nowMs); // nothing else will take it
      throw invalidRequest(
        'import_mismatch',
        `request ${requestId} differs from the prompt whose KV was imported`,
        'prompt',
      );
    }
    const seq = newSequence(this.config, request, prefillOnly);
    this.sequences.set(requestId, seq);
    this.stalled = false;
    if (!takesImport) {
      this.queues.waiting.push(seq);
      return;
    }
    // The imported blocks become the sequence's (the block manager knows both by this id).
    this.handoff.take(requestId);
    seq.computed = seq.promptLength;
    seq.prefilled = true;
    seq.admitted = true;
    seq.cachedTokens = seq.promptLength; // no prompt token is computed here
    this.queues.readyImports.push(seq);
  }

  /**
   * Frees a pinned prefill's blocks (they stay in the prefix cache, evictable); false when
   * not pinned.
   */
  release(requestId: string, nowMs: number): boolean {
    if (!this.handoff.release(requestId)) return false;
    this.stalled = false;
    this.flush(nowMs);
    return true;
  }

  /** Pinned prefills and the distinct blocks they hold. */
  pinned(): { requests: number; blocks: number } {
    return this.handoff.pinned();
  }

  /**
   * Holds blocks for a remote prefill's KV: the cached prefix (every full block may match:
   * the prompt's KV arrives complete, nothing needs recomputing) plus fresh blocks for the
   * rest. undefined when the free blocks do not suffice. Throws
   * ArmatureError('invalid_argument') for an empty or invalid prompt or an id in use.
   */
  reserveImport(requestId: string, tokenIds: readonly number[], nowMs: number): ImportPlan | undefined {
    if (typeof requestId !== 'string' || requestId === '')
      throw invalidRequest('invalid_request_id', 'request id must be a non-empty string');
    if (this.inUse(requestId)) throw invalidRequest('duplicate_request_id', `request ${requestId} is already running`);
    validatePrompt(tokenIds);
    const plan = this.handoff.reserve(requestId, tokenIds);
    if (plan) this.flush(nowMs);
    return plan;
  }

  /**
   * The pulled bytes are in place: checks every imported token row (when memory is
   * attached) and registers the imported full blocks. False, freeing the reservation, when
   * a check fails. Throws ArmatureError('not_found') without a reservation.
   */
  commitImport(requestId: string, nowMs: number): boolean {
    const outcome = this.handoff.commit(requestId, this.memory);
    if (outcome === 'already') return true;
    if (outcome === 'failed') {
      this.cancelImport(requestId, nowMs);
      return false;
    }
    this.flush(nowMs);
    return true;
  }

  /** Frees a reservation, committed or not, that no request has taken; no-op when unknown. */
  cancelImport(requestId: string, nowMs: number): void {
    if (!this.handoff.cancel(requestId)) return;
    this.stalled = false;
    this.flush(nowMs);
  }

  /**
   * Keeps the KV cache's bytes in `memory` from now on (at least totalKvBlocks × blockBytes
   * bytes). Throws if memory is attached already, the cache is in use (its blocks would lack
   * bytes), or `memory` is too small.
   */
  attachMemory(memory: Uint8Array): void {
    if (this.memory)
      throw new ArmatureError('failed_precondition', 'kv_memory_attached', 'KV memory is attached already');
    if (!(memory instanceof Uint8Array))
      throw new ArmatureError('invalid_argument', 'invalid_kv_memory', 'KV memory must be a Uint8Array');
    if (this.sequences.size > 0 || this.blocks.usedBlocks > 0 || this.blocks.cachedBlocks > 0)
      throw new ArmatureError('failed_precondition', 'kv_cache_in_use', 'attach KV memory before the first request');
    const layout = this.config.kvLayout;
    const needed = this.config.totalKvBlocks * kvBlockBytes(layout);
    if (memory.byteLength < needed)
      throw new ArmatureError(
        'invalid_argument',
        'kv_memory_too_small',
        `KV memory of ${memory.byteLength} bytes is below the ${needed} bytes of ${this.config.totalKvBlocks} blocks`,
      );
    this.memory = new KvMemory(layout, this.config.totalKvBlocks, memory);
  }

  /**
   * Registers the full blocks of `tokenIds` as cached, as if computed here: KV blocks pulled
   * from a prefill worker (disaggregated serving). They stay in the prefix cache, evictable,
   * until a request uses them. Returns the blocks newly registered; 0 when prefix caching is
   * off or the free blocks do not suffice (the request then prefills locally). For the offline
   * simulator: it moves no bytes, so it refuses to run with memory attached.
   */
  importPrefix(tokenIds: readonly number[], nowMs: number): number {
    if (this.memory) throw new Error('importPrefix keeps no KV bytes: use reserveImport and commitImport');
    if (!this.config.enablePrefixCaching) return 0;
    const registered = this.handoff.importPrefix(tokenIds);
    if (registered > 0) this.flush(nowMs);
    return registered;
  }

  /**
   * Drops a request wherever it is (waiting, running, or a ready import) and frees its
   * blocks; false if unknown (or finished, or a pinned prefill: see release).
   */
  cancel(requestId: string): boolean {
    const seq = this.sequences.get(requestId);
    if (!seq) return false;
    this.sequences.delete(requestId);
    const { running, readyImports, waiting } = this.queues;
    for (const queue of [running, readyImports, waiting]) {
      const at = queue.indexOf(seq);
      if (at >= 0) queue.splice(at, 1);
    }
    this.blocks.free(requestId); // a waiting request holds none
    this.stalled = false;
    return true;
  }

  has(requestId: string): boolean {
    return this.sequences.has(requestId);
  }

  /**
   * Where a request is: queued ('waiting': not yet running, a ready import included),
   * 'running', a prefill holding its prompt ('pinned'), or blocks reserved for its KV
   * ('importing').
   */
  stateOf(requestId: string): 'waiting' | 'running' | 'pinned' | 'importing' | undefined {
    if (this.handoff.pins.has(requestId)) return 'pinned';
    if (this.handoff.imports.has(requestId)) return 'importing';
    const seq = this.sequences.get(requestId);
    if (!seq) return undefined;
    return this.queues.running.includes(seq) ? 'running' : 'waiting';
  }

  /** Whether step() would do anything (false while stalled on blocks held by pins or imports). */
  hasWork(): boolean {
    if (this.stalled) return false;
    const { running, waiting, readyImports } = this.queues;
    return running.length > 0 || waiting.length > 0 || readyImports.length > 0;
  }

  load(): EngineLoad {
    const { running, waiting, readyImports } = this.queues;
    let activePrefillTokens = 0;
    for (const seq of running) if (!seq.prefilled) activePrefillTokens += seq.tokens.length - seq.computed;
    for (const seq of waiting) activePrefillTokens += seq.tokens.length;
    return {
      activeDecodeBlocks: this.blocks.usedBlocks,
      activePrefillTokens,
      waitingRequests: waiting.length + readyImports.length,
      runningRequests: running.length,
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
      return { durationMs: 0, outputs: [], prefillTokens: 0, decodeSequences: 0, sequences: 0, preempted: [] };
    }
    const { scheduled, preempted } = planPass(this.queues, this.blocks, this.config);
    if (scheduled.length === 0) {
      // A pass that only preempted (ready imports or pins held the blocks the running needed)
      // still changed something: its victims wait and the next pass schedules afresh. Blocks
      // held by pins or import reservations, though, free up only when their holder lets go.
      if (preempted.length === 0) {
        if (this.handoff.pins.size === 0 && this.handoff.imports.size === 0)
          throw new Error('mocker scheduler made no progress');
        this.stalled = true;
      }
      this.flush(nowMs);
      return { durationMs: 0, outputs: [], prefillTokens: 0, decodeSequences: 0, sequences: 0, preempted };
    }

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
      const from = seq.computed;
      seq.computed += newTokens;
      // Bytes first: commit may swap a block for an identical registered one.
      this.memory?.writeTokens(this.blocks.sequenceBlockIds(seq.id)!, seq.tokens, seq.hashes, from, seq.computed);
      this.blocks.commit(seq.id, seq.tokens, seq.hashes, seq.computed);
      if (seq.computed < seq.tokens.length) continue; // a prefill chunk: no token yet
      const sampled = this.sample(seq);
      outputs.push(sampled);
      const ends = sampled.output.finishReason !== undefined;
      if (!ends && sampled.prefill === undefined) continue;
      finished = true;
      this.sequences.delete(seq.id);
      if (ends) this.blocks.free(seq.id);
      else this.handoff.pins.add(seq.id); // a prefill whose request goes on: its KV waits for the decode worker
    }
    if (finished) this.queues.running = this.queues.running.filter((seq) => this.sequences.has(seq.id));
    this.flush(nowMs);
    return { durationMs, outputs, prefillTokens, decodeSequences, sequences: scheduled.length, preempted };
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
    checkCoreInvariants({
      blocks: this.blocks,
      maxNumSeqs: this.config.maxNumSeqs,
      queues: this.queues,
      sequences: this.sequences,
      pins: this.handoff.pins,
      imports: this.handoff.imports,
    });
  }

  private sample(seq: Sequence): MockerStepOutput {
    const { blockSize } = this.config;
    const token = seq.sampler.next();
    appendToken(seq, token, blockSize);
    // A prefill-only request stops here whatever its stop conditions say; they decide only
    // whether the request as a whole ends (then nothing stays pinned).
    const finishReason = finishReasonOf(this.config, seq.request.stop, seq.stopTokenIds, token, seq.generated);

    const output: EngineOutput = { tokenIds: [token] };
    if (!seq.firstOutputSent) {
      seq.firstOutputSent = true;
      output.cachedTokens = seq.cachedTokens;
      output.promptTokens = seq.promptLength;
    }
    if (finishReason) output.finishReason = finishReason;
    if (!seq.prefillOnly) return { requestId: seq.id, output };
    const prefill: PrefillResult = {
      firstToken: token,
      cachedTokens: seq.cachedTokens,
      promptTokens: seq.promptLength,
      // Read after this pass's commit, which may have swapped blocks for registered twins.
      blockIds: finishReason ? [] : this.blocks.sequenceBlockIds(seq.id)!.slice(),
      blockHashes: seq.hashes.slice(0, Math.floor(seq.promptLength / blockSize)),
    };
    if (finishReason) prefill.finishReason = finishReason;
    return { requestId: seq.id, output, prefill };
  }

  /** Whether a request id is taken: a live request, a pinned prefill or an import reservation. */
  private inUse(requestId: string): boolean {
    return this.sequences.has(requestId) || this.handoff.holds(requestId);
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
