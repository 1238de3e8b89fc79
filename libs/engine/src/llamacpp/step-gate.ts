// Keeps the decoding slots in lock-step so llama.cpp evaluates their next tokens in one
// batch. node-llama-cpp starts the next batch as soon as the previous one is done, with
// whatever sequences have queued a token by then; a slot whose token reached the engine a
// few microtasks later than the others misses it and runs in a batch of its own, so a step
// of 8 streams often became a batch of 7 and a batch of 1. Here each decoding slot, having
// handled its token, waits until every other decoding slot has handled its own, and then
// all of them ask for their next token together.
//
// A slot still evaluating its prompt is not waited for (a long prompt spans several
// batches); it joins the group with its first token. Until the turn ends or the next batch
// starts, a group just let go is open: a slot whose token came from the same batch goes
// with it rather than waiting for the group's next tokens.
//
// The gate also sees node-llama-cpp's batches start: it schedules their dispatch (the
// context's `batching.dispatchSchedule`) and is told when one is put together
// (`batchStarted`, from the prioritization strategy), so the engine can hand a step's
// tokens to their consumers once the next batch is on its way: their work (gRPC writes)
// then overlaps the evaluation instead of delaying it.

import type { EngineStep } from '../types.js';

/** Empty batches in a row while waiting for decodes (each costs a few microtasks). */
const MAX_HOLDS = 100;

export class StepGate {
  /** Decoding slots whose next token has been asked for and not yet received. */
  private readonly inflight = new Set<number>();
  /** Slots that have handled their token and wait for the others. */
  private waiting: Array<() => void> = [];
  /** Set from a release to the end of that turn or the next batch: slots stepping now join the group let go. */
  private open = false;
  private dispatchQueued = false;
  private started = 0;
  private holds = 0;

  /** @param lockstep false: slots never wait and batches are never held (node-llama-cpp's own timing) */
  constructor(private readonly lockstep = true) {}

  /** Called each time a batch is put together, before llama.cpp evaluates it. */
  onBatch: () => void = () => {};

  /** Told what each batch holds (the engine's onStep). */
  onBatchChosen: (step: EngineStep) => void = () => {};

  /** node-llama-cpp's `batching.dispatchSchedule`: dispatches on the next turn, like its default. */
  readonly dispatchSchedule = (dispatch: () => void): void => {
    this.dispatchQueued = true;
    setImmediate(() => {
      this.dispatchQueued = false;
      dispatch();
    });
  };

  /** A batch is being put together (called by the prioritization strategy). */
  batchStarted(): void {
    // A slot stepping from now on would miss this batch: it waits for the next step.
    this.open = false;
    this.started++;
    this.onBatch();
  }

  /**
   * Whether the batch being put together should wait for decodes still on their way: fewer
   * decodes are queued than slots decoding (their tokens are landing, or they are about to
   * queue the next). node-llama-cpp puts the next batch together a few microtasks after the
   * last one ends, with what is queued then; a long prompt's remainder is always queued,
   * so without this the decoding slots would miss every other batch while a long prompt
   * is evaluated. An empty batch makes node-llama-cpp look again at once; after
   * MAX_HOLDS looks in a row the batch goes ahead with what is there.
   */
  holdFor(queuedDecodes: number): boolean {
    if (this.lockstep && queuedDecodes < this.inflight.size && this.holds < MAX_HOLDS) {
      this.holds++;
      return true;
    }
    this.holds = 0;
    return false;
  }

  /** Batches put together so far. */
  get batches(): number {
    return this.started;
  }

  /** Whether a batch dispatch is scheduled and has not run yet. */
  get dispatchPending(): boolean {
    return this.dispatchQueued;
  }

  /** The slot's token arrived: it no longer holds the step back. */
  landed(slot: number): void {
    this.inflight.delete(slot);
  }

  /** Waits until no decoding slot has a token outstanding; the slot then counts as asking for its next one. */
  async step(slot: number): Promise<void> {
    if (this.lockstep && !this.open) {
      if (this.inflight.size > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
      else this.release();
    }
    this.inflight.add(slot);
  }

  /** The slot stopped decoding (finished, cancelled, failed). */
  leave(slot: number): void {
    this.inflight.delete(slot);
    if (this.inflight.size === 0) this.release();
  }

  /** Decoding slots with a token outstanding (tests). */
  get outstanding(): number {
    return this.inflight.size;
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
    if (!this.open) {
      this.open = true;
      setImmediate(() => (this.open = false));
    }
  }
}
