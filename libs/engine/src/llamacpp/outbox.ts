// Where a step's outputs wait until llama.cpp's next batch is on its way. The consumers of
// a request's output (its gRPC stream) run on the engine's JavaScript thread; handed a
// token at once, they would run before the next batch is put together and delay it. Here
// outputs go out on the turn after a batch has been put together (the step gate reports
// each one), so their work overlaps the evaluation. Should no batch start within a
// millisecond and none be about to be dispatched (the request waits for a batch already
// running, or nothing else runs), they go out then. (Not on the next turn: the other
// tokens of a step can take longer than a turn to be sampled, and delivering before them
// would put the consumers' work ahead of the next batch again.)
import { mergeInto } from '../output-stream.js';
import type { EngineOutput } from '../types.js';
import type { StepGate } from './step-gate.js';

/** How long an output waits for the next batch to start before it is delivered anyway. */
const FALLBACK_DELIVERY_MS = 1;

export class Outbox<K> {
  private readonly pending = new Map<K, EngineOutput>();
  private scheduled = false;
  private fallbackScheduled = false;

  /** @param push hands an output to its consumer */
  constructor(
    private readonly gate: StepGate,
    private readonly push: (key: K, output: EngineOutput) => void,
  ) {
    gate.onBatch = () => this.schedule();
  }

  /** Queues an output, merged with any not yet delivered for the same key. */
  add(key: K, output: EngineOutput): void {
    const queued = this.pending.get(key);
    if (queued) mergeInto(queued, output);
    else this.pending.set(key, output);
    this.armFallback();
  }

  /** Hands the key's undelivered output to its consumer now. */
  flush(key: K): void {
    const output = this.pending.get(key);
    if (!output) return;
    this.pending.delete(key);
    this.push(key, output);
  }

  /** Delivers everything on the next turn: after the batch being put together has started evaluating. */
  private schedule(): void {
    if (this.scheduled || this.pending.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushAll();
    });
  }

  /**
   * Delivers in a millisecond if no batch starts meanwhile and none is about to be
   * dispatched; when one did, looks again for what was added since.
   */
  private armFallback(): void {
    if (this.fallbackScheduled) return;
    this.fallbackScheduled = true;
    const batches = this.gate.batches;
    setTimeout(() => {
      this.fallbackScheduled = false;
      if (this.gate.batches === batches && !this.gate.dispatchPending) this.flushAll();
      else if (this.pending.size > 0) this.armFallback();
    }, FALLBACK_DELIVERY_MS);
  }

  private flushAll(): void {
    for (const key of [...this.pending.keys()]) this.flush(key);
  }
}
