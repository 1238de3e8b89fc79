// The llama.cpp engine's generation loop. One context holds `sequences` sequences (slots)
// that llama.cpp evaluates together in one batch, so requests in different slots decode
// concurrently. Prefix reuse: each slot keeps the tokens of its last request in its KV
// cache; a waiting request takes the free slot sharing the longest prefix with its prompt,
// erases the rest and evaluates only the new tokens. Requests beyond the slots wait, in
// order. Decoding slots step together (StepGate), so each step is one batch of all their
// tokens; a step's tokens reach their consumers (Outbox) only once the next batch is on its
// way. It runs validated requests to their end, cancels and fails them; it does not
// validate requests, publish KV events or load (it reports slot changes to the engine), nor
// decide what a prefill hands on (kv-hooks.ts).
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import { ArmatureError, asArmatureError, createLogger } from '@armature/runtime';
import { OutputStream } from '../output-stream.js';
import type { EngineLoad, EngineOutput, EngineRequest } from '../types.js';
import { Outbox } from './outbox.js';
import { evaluationSampling } from './sampling.js';
import type { Reservation, SequenceStates } from './sequence-states.js';
import type { StepGate } from './step-gate.js';

const log = createLogger('engine/llamacpp');

/** A request in the engine, from queueing to its stream's end. */
export interface Job {
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

/** One sequence of the context and the job it runs. */
export interface Slot {
  readonly index: number;
  readonly sequence: LlamaContextSequence;
  job: Job | undefined;
  lastUsed: number;
}

/** What the runner needs from its engine. */
export interface SlotRunnerOptions {
  sequences: LlamaContextSequence[];
  gate: StepGate;
  states: SequenceStates;
  blockSize: number;
  contextLength: number;
  /** Why `token`, the `generated`-th output token of `request`, ends it (undefined: it goes on). */
  finishReasonOf(request: EngineRequest, token: Token, generated: number): 'stop' | 'length' | undefined;
  /** The tokens a slot holds in its KV cache changed (the engine turns this into KV events). */
  slotTokens(slot: number, tokens: readonly (Token | number)[]): void;
  /** The load may have changed. */
  loadChanged(): void;
}

/** A validated request to run: its tokens to evaluate and, for disaggregation, its state. */
export interface JobSpec {
  request: EngineRequest;
  prompt: number[];
  signal: AbortSignal;
  exportFor?: EngineRequest;
  importFrom?: Reservation;
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class SlotRunner {
  readonly slots: Slot[];
  private readonly waiting: Job[] = [];
  private readonly ids = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private useCounter = 0;
  /** Outputs not yet handed to their streams: they go out once the next batch is on its way. */
  private readonly outbox: Outbox<Job>;

  constructor(private readonly options: SlotRunnerOptions) {
    this.outbox = new Outbox<Job>(options.gate, (job, out) => job.stream.push(out));
    this.slots = options.sequences.map((sequence, index) => ({ index, sequence, job: undefined, lastUsed: 0 }));
  }

  /** Whether a request of this id is waiting or running. */
  has(requestId: string): boolean {
    return this.ids.has(requestId);
  }

  /** Queues a validated request and returns its stream (ended at once, 'cancelled', if its signal has fired). */
  enqueue(spec: JobSpec): OutputStream {
    const { request, prompt, signal, exportFor, importFrom } = spec;
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
      if (importFrom) this.options.states.drop(importFrom);
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
      activeDecodeBlocks += Math.ceil(tokens / this.options.blockSize);
      activePrefillTokens += slot.job.pendingPrefill;
    }
    for (const job of this.waiting) activePrefillTokens += job.prompt.length;
    const capacity = this.options.contextLength * this.slots.length;
    return {
      activeDecodeBlocks,
      activePrefillTokens,
      waitingRequests: this.waiting.length,
      runningRequests: running,
      kvUsage: capacity > 0 ? heldTokens / capacity : 0,
    };
  }

  /** Fails waiting requests and running ones (after their token in flight) with `error`; resolves once all have ended. */
  async close(error: ArmatureError): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) this.finishJob(job, error);
    for (const slot of this.slots) {
      if (!slot.job) continue;
      slot.job.cancelled = true;
      slot.job.failure = error;
    }
    await Promise.allSettled([...this.running]);
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
        this.options.loadChanged();
        this.pump();
      });
      this.running.add(run);
    }
    this.options.loadChanged();
  }

  private async serve(slot: Slot, job: Job): Promise<void> {
    const { request, prompt } = job;
    const { gate, states, finishReasonOf } = this.options;
    const seq = slot.sequence;
    const track = (tokens: readonly (Token | number)[]): void => this.options.slotTokens(slot.index, tokens);
    try {
      if (job.importFrom) await this.restore(seq, job);
      // At least one token must be evaluated to sample from, so a fully cached prompt re-evaluates its last token.
      const reused = Math.min(commonPrefix(seq.contextTokens, prompt), prompt.length - 1);
      if (seq.nextTokenIndex > reused) await seq.eraseContextTokenRanges([{ start: reused, end: seq.nextTokenIndex }]);
      track(prompt.slice(0, reused));
      job.pendingPrefill = prompt.length - reused;
      let generated = request.firstToken === undefined ? 0 : 1;
      let first = true;
      let lastToken: Token | undefined;
      let finished = false;
      const tokens = seq.evaluate(prompt.slice(reused) as Token[], {
        // Without it node-llama-cpp ends the stream silently at EOS, and ignore_eos could not go past it.
        yieldEogToken: true,
        ...evaluationSampling(request.sampling),
      });
      for await (const raw of tokens) {
        gate.landed(slot.index);
        if (job.cancelled) break;
        const token = Number(raw);
        lastToken = raw;
        const out: EngineOutput = { tokenIds: [token] };
        if (first) {
          first = false;
          job.pendingPrefill = 0;
          out.cachedTokens = Math.min(reused, request.tokenIds.length);
          out.promptTokens = request.tokenIds.length;
          track(prompt);
          this.options.loadChanged();
        }
        generated++;
        const finish = finishReasonOf(request, raw, generated);
        if (finish) out.finishReason = finish;
        this.outbox.add(job, out);
        if (out.finishReason) {
          finished = true;
          break;
        }
        // With the other decoding slots, so that their next tokens share a batch.
        await gate.step(slot.index);
        if (job.cancelled) break;
      }
      gate.leave(slot.index);
      if (!finished && !job.cancelled && !first) {
        // The evaluation ended on its own (the sequence is full): say so rather than leave the stream open-ended.
        this.outbox.add(job, { tokenIds: [], finishReason: 'length' });
      }
      if (!first || job.cancelled) track(seq.contextTokens);
      if (job.exportFor && !first && !job.cancelled && !finishReasonOf(job.exportFor, lastToken!, 1))
        await states.export(seq, job.request.requestId);
      this.finishJob(job);
    } catch (err) {
      gate.leave(slot.index);
      log.error('llama.cpp evaluation failed', { requestId: request.requestId, err });
      // What the slot holds after a failure is unknown: start it afresh.
      await seq.clearHistory().catch(() => {});
      track([]);
      this.finishJob(job, asArmatureError(err));
    }
  }

  /** Restores a pulled state into the slot; one that does not hold exactly the prompt is dropped. */
  private async restore(seq: LlamaContextSequence, job: Job): Promise<void> {
    const reservation = job.importFrom!;
    job.importFrom = undefined;
    if (!(await this.options.states.restore(seq, reservation))) {
      log.warn('an imported KV state does not hold the prompt; prefilling locally', {
        requestId: job.request.requestId,
      });
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
    this.options.loadChanged();
  }

  private finishJob(job: Job, error = job.failure): void {
    this.outbox.flush(job);
    // An imported state never restored (cancelled while queued, a failure, shutdown) frees its staging blocks.
    if (job.importFrom) {
      this.options.states.drop(job.importFrom);
      job.importFrom = undefined;
    }
    job.signal.removeEventListener('abort', job.onAbort);
    this.ids.delete(job.request.requestId);
    if (error) job.stream.fail(error);
    else job.stream.end();
  }
}
