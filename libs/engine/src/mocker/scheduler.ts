// The mocker's engine core: pure and synchronous, no timers and no clock of its own, so the
// live engine (engine.ts) and an offline virtual-time simulator drive the same code. Each
// step() is one forward pass scheduled like vLLM's v1 scheduler: running requests first
// (decode tokens and unfinished prefill chunks, preempting the newest running request when
// blocks run out), then waiting requests FCFS, all under max_num_seqs and
// max_num_batched_tokens. It returns the pass's simulated duration and outputs; it does not
// sleep, deliver streams or handle signals.
//
// Disaggregated serving adds three kinds of holders of blocks that are neither waiting nor
// running: pinned prefills (a prefill-only request that produced its first token keeps its
// prompt's KV until the decode worker pulled it and release() is called), import
// reservations (blocks held for a remote prefill's KV, from reserveImport() to the decode
// request or cancelImport()), and ready imports (decode requests whose KV was imported,
// queued ahead of waiting for a running slot). When memory is attached, every token whose KV
// a pass computes gets its bytes written (kv-memory.ts), and imported bytes are checked.
import { computeBlockHashes, computeSequenceHashes, type KvEvent, type KvEventBatch } from '@armature/kv';
import { ArmatureError } from '@armature/runtime';
import type { EngineLoad, EngineOutput, EngineRequest, ImportPlan, PrefillResult } from '../types.js';
import { BlockManager } from './block-manager.js';
import { KvMemory, kvBlockBytes } from './kv-memory.js';
import type { MockerConfig } from './options.js';
import {
  appendToken,
  finishReasonOf,
  invalid,
  newSequence,
  sameTokens,
  validatePrompt,
  validateRequest,
  type Sequence,
} from './sequence.js';

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
  /** Requests preempted in the pass (they wait again and recompute). */
  preempted: string[];
}

/** Blocks held for a remote prefill's KV (reserveImport to the decode request). */
interface ImportReservation {
  readonly tokens: readonly number[];
  /** Sequence hashes of the prompt's full blocks. */
  readonly hashes: readonly bigint[];
  /** Leading full blocks that were already in the prefix cache. */
  readonly cachedBlocks: number;
  /** The bytes are checked and the full blocks registered: a decode request may take it. */
  committed: boolean;
}

export class MockerCore {
  readonly blocks: BlockManager;
  private readonly sequences = new Map<string, Sequence>();
  /** FCFS; preempted requests go back to the front. */
  private waiting: Sequence[] = [];
  /** In admission order; the last is preempted first. */
  private running: Sequence[] = [];
  /** Decode requests whose prompt KV was imported: they hold blocks and run ahead of waiting. */
  private readyImports: Sequence[] = [];
  /** Prefill-only requests done with their first token, holding their prompt's blocks. */
  private readonly pinnedIds = new Set<string>();
  private readonly imports = new Map<string, ImportReservation>();
  /**
   * The last pass could schedule nothing because pins or import reservations hold the blocks
   * it needs: no work until something changes (a release, a cancel, a new request).
   */
  private stalled = false;
  private memory: KvMemory | undefined;
  private lastLoad: EngineLoad | undefined;
  private prefixImports = 0;

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

  /**
   * Queues a request; throws ArmatureError('invalid_argument') for one that can never run. A
   * request with firstToken continues after it: from its committed import if there is one
   * (decoding at once), else by prefilling prompt + firstToken here.
   */
  add(request: EngineRequest, nowMs: number, options: MockerAddOptions = {}): void {
    void nowMs; // arrival time: reserved for queue-time statistics
    const { requestId, tokenIds, firstToken } = request;
    const prefillOnly = options.prefillOnly ?? false;
    validateRequest(this.config, request, prefillOnly);
    const reservation = this.imports.get(requestId);
    const takesImport = reservation !== undefined && reservation.committed && firstToken !== undefined;
    if (!takesImport && this.inUse(requestId))
      throw invalid('duplicate_request_id', `request ${requestId} is already running`);
    if (takesImport && !sameTokens(reservation.tokens, tokenIds)) {
      this.cancelImport(requestId, nowMs); // nothing else will take it
      throw invalid('import_mismatch', `request ${requestId} differs from the prompt whose KV was imported`, 'prompt');
    }
    const seq = newSequence(this.config, request, prefillOnly);
    this.sequences.set(requestId, seq);
    this.stalled = false;
    if (!takesImport) {
      this.waiting.push(seq);
      return;
    }
    // The imported blocks become the sequence's (the block manager knows both by this id).
    this.imports.delete(requestId);
    seq.computed = seq.promptLength;
    seq.prefilled = true;
    seq.admitted = true;
    seq.cachedTokens = seq.promptLength; // no prompt token is computed here
    this.readyImports.push(seq);
  }

  /**
   * Frees a pinned prefill's blocks (they stay in the prefix cache, evictable); false when
   * not pinned.
   */
  release(requestId: string, nowMs: number): boolean {
    if (!this.pinnedIds.delete(requestId)) return false;
    this.blocks.free(requestId);
    this.stalled = false;
    this.flush(nowMs);
    return true;
  }

  /** Pinned prefills and the distinct blocks they hold. */
  pinned(): { requests: number; blocks: number } {
    const blocks = new Set<number>();
    for (const id of this.pinnedIds) for (const block of this.blocks.sequenceBlockIds(id)!) blocks.add(block);
    return { requests: this.pinnedIds.size, blocks: blocks.size };
  }

  /**
   * Holds blocks for a remote prefill's KV: the cached prefix (every full block may match:
   * the prompt's KV arrives complete, nothing needs recomputing) plus fresh blocks for the
   * rest. undefined when the free blocks do not suffice. Throws
   * ArmatureError('invalid_argument') for an empty or invalid prompt or an id in use.
   */
  reserveImport(requestId: string, tokenIds: readonly number[], nowMs: number): ImportPlan | undefined {
    if (typeof requestId !== 'string' || requestId === '')
      throw invalid('invalid_request_id', 'request id must be a non-empty string');
    if (this.inUse(requestId)) throw invalid('duplicate_request_id', `request ${requestId} is already running`);
    validatePrompt(tokenIds);
    const tokens = tokenIds.slice();
    const hashes = computeSequenceHashes(computeBlockHashes(tokens, this.config.blockSize));
    const cachedBlocks = this.blocks.matchPrefix(hashes);
    if (!this.blocks.allocate(requestId, tokens.length, hashes.slice(0, cachedBlocks))) return undefined;
    this.imports.set(requestId, { tokens, hashes, cachedBlocks, committed: false });
    const held = this.blocks.sequenceBlockIds(requestId)!;
    const blockIndices: number[] = [];
    for (let i = cachedBlocks; i < held.length; i++) blockIndices.push(i);
    this.flush(nowMs);
    return { blockIndices, localBlockIds: blockIndices.map((i) => held[i]!), cachedBlocks };
  }

  /**
   * The pulled bytes are in place: checks every imported token row (when memory is
   * attached) and registers the imported full blocks. False, freeing the reservation, when
   * a check fails. Throws ArmatureError('not_found') without a reservation.
   */
  commitImport(requestId: string, nowMs: number): boolean {
    const reservation = this.imports.get(requestId);
    if (!reservation) throw new ArmatureError('not_found', 'unknown_import', `no KV import reserved for ${requestId}`);
    if (reservation.committed) return true;
    const { tokens, hashes, cachedBlocks } = reservation;
    const held = this.blocks.sequenceBlockIds(requestId)!;
    const from = cachedBlocks * this.config.blockSize;
    if (this.memory && !this.memory.checkTokens(held, tokens, hashes, from, tokens.length)) {
      this.cancelImport(requestId, nowMs);
      return false;
    }
    this.blocks.commit(requestId, tokens, hashes, tokens.length);
    reservation.committed = true;
    this.flush(nowMs);
    return true;
  }

  /** Frees a reservation, committed or not, that no request has taken; no-op when unknown. */
  cancelImport(requestId: string, nowMs: number): void {
    if (!this.imports.delete(requestId)) return;
    this.blocks.free(requestId);
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
    const { blockSize } = this.config;
    if (!this.config.enablePrefixCaching) return 0;
    const hashes = computeSequenceHashes(computeBlockHashes(tokenIds, blockSize));
    if (hashes.length === 0) return 0;
    const held = this.blocks.matchPrefix(hashes);
    if (held === hashes.length) return 0;
    const importId = `\u0000import:${++this.prefixImports}`;
    const tokens = hashes.length * blockSize;
    if (!this.blocks.allocate(importId, tokens, hashes.slice(0, held))) return 0;
    this.blocks.commit(importId, tokenIds, hashes, tokens);
    this.blocks.free(importId);
    this.flush(nowMs);
    return hashes.length - held;
  }

  /**
   * Drops a request wherever it is (waiting, running, or a ready import) and frees its
   * blocks; false if unknown (or finished, or a pinned prefill: see release).
   */
  cancel(requestId: string): boolean {
    const seq = this.sequences.get(requestId);
    if (!seq) return false;
    this.sequences.delete(requestId);
    for (const queue of [this.running, this.readyImports, this.waiting]) {
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
    if (this.pinnedIds.has(requestId)) return 'pinned';
    if (this.imports.has(requestId)) return 'importing';
    const seq = this.sequences.get(requestId);
    if (!seq) return undefined;
    return this.running.includes(seq) ? 'running' : 'waiting';
  }

  /** Whether step() would do anything (false while stalled on blocks held by pins or imports). */
  hasWork(): boolean {
    if (this.stalled) return false;
    return this.running.length > 0 || this.waiting.length > 0 || this.readyImports.length > 0;
  }

  load(): EngineLoad {
    let activePrefillTokens = 0;
    for (const seq of this.running) if (!seq.prefilled) activePrefillTokens += seq.tokens.length - seq.computed;
    for (const seq of this.waiting) activePrefillTokens += seq.tokens.length;
    return {
      activeDecodeBlocks: this.blocks.usedBlocks,
      activePrefillTokens,
      waitingRequests: this.waiting.length + this.readyImports.length,
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
    if (scheduled.length === 0) {
      // A pass that only preempted (ready imports or pins held the blocks the running needed)
      // still changed something: its victims wait and the next pass schedules afresh. Blocks
      // held by pins or import reservations, though, free up only when their holder lets go.
      if (preempted.length === 0) {
        if (this.pinnedIds.size === 0 && this.imports.size === 0) throw new Error('mocker scheduler made no progress');
        this.stalled = true;
      }
      this.flush(nowMs);
      return { durationMs: 0, outputs: [], prefillTokens: 0, decodeSequences: 0, preempted };
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
      else this.pinnedIds.add(seq.id); // a prefill whose request goes on: its KV waits for the decode worker
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
    if (this.running.length + this.waiting.length + this.readyImports.length !== this.sequences.size)
      fail('a request is lost or queued twice');
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
    for (const seq of this.readyImports) {
      const held = this.blocks.sequenceBlockIds(seq.id);
      if (!held || held.length < this.blocks.blocksFor(seq.computed)) fail(`ready import ${seq.id} lacks its blocks`);
      if (!seq.prefilled || seq.computed !== seq.tokens.length - 1)
        fail(`ready import ${seq.id} is not ready to decode`);
    }
    for (const id of this.pinnedIds) {
      if (this.sequences.has(id) || this.imports.has(id)) fail(`pinned ${id} is also a request or an import`);
      if (!this.blocks.hasSequence(id)) fail(`pinned ${id} holds no blocks`);
    }
    for (const [id, reservation] of this.imports) {
      if (this.sequences.has(id)) fail(`import ${id} is also a request`);
      const held = this.blocks.sequenceBlockIds(id);
      if (held?.length !== this.blocks.blocksFor(reservation.tokens.length))
        fail(`import ${id} holds the wrong blocks`);
    }
    // Every holder of blocks is accounted for (the simulator's importPrefix holds none between calls).
    let holders = 0;
    for (const id of this.blocks.sequenceIds()) {
      holders++;
      if (!this.sequences.has(id) && !this.pinnedIds.has(id) && !this.imports.has(id))
        fail(`${id} holds blocks but is no request, pin or import`);
    }
    if (holders !== this.running.length + this.readyImports.length + this.pinnedIds.size + this.imports.size)
      fail(`${holders} block holders for the running, ready, pinned and importing`);
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

    // Then imported requests (their KV is in place: they decode at once), unless this pass
    // already had to preempt.
    if (preempted.length > 0) return { scheduled, preempted };
    while (this.readyImports.length > 0 && budget > 0 && this.running.length < this.config.maxNumSeqs) {
      const seq = this.readyImports[0]!;
      let fits = this.blocks.allocate(seq.id, seq.tokens.length);
      // With nothing running, nothing frees blocks: the newest ready import gives way (and recomputes).
      while (!fits && this.running.length === 0 && this.readyImports.length > 1) {
        const victim = this.readyImports.pop()!;
        this.preempt(victim);
        preempted.push(victim.id);
        fits = this.blocks.allocate(seq.id, seq.tokens.length);
      }
      if (!fits) break;
      this.readyImports.shift();
      this.running.push(seq);
      scheduled.push({ seq, newTokens: 1 });
      budget -= 1;
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
    return this.sequences.has(requestId) || this.pinnedIds.has(requestId) || this.imports.has(requestId);
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
