// A request's output stream: the engine loop pushes, the consumer pulls with for-await.
// The loop must never block on a slow consumer, so the queue is bounded in entries: past
// `capacity`, a new output is merged into the last queued one (the consumer then gets a
// multi-token chunk). Tokens are bounded by max_tokens anyway.
import type { EngineOutput } from './types.js';

/** Default most queued outputs before merging. */
export const DEFAULT_STREAM_CAPACITY = 64;

export class OutputStream implements AsyncIterableIterator<EngineOutput> {
  private readonly queue: EngineOutput[] = [];
  private readonly takers: Array<{ resolve: (r: IteratorResult<EngineOutput>) => void; reject: (e: unknown) => void }> =
    [];
  private ended = false;
  private error: unknown;
  private failed = false;

  /**
   * @param onReturn called once if the consumer stops early (break, return, throw)
   * @param capacity most queued outputs before merging (default 64)
   */
  constructor(
    private readonly onReturn: () => void = () => {},
    private readonly capacity = DEFAULT_STREAM_CAPACITY,
  ) {}

  /** Whether end() or fail() was called. */
  get closed(): boolean {
    return this.ended;
  }

  /** Queued outputs not yet taken. */
  get queued(): number {
    return this.queue.length;
  }

  push(output: EngineOutput): void {
    if (this.ended) return;
    const taker = this.takers.shift();
    if (taker) {
      taker.resolve({ value: output, done: false });
      return;
    }
    if (this.queue.length >= this.capacity) {
      // The stream owns what is pushed, so merging in place keeps a slow consumer O(tokens).
      mergeInto(this.queue[this.queue.length - 1]!, output);
    } else {
      this.queue.push(output);
    }
  }

  /** Ends the stream after what is queued. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const taker of this.takers.splice(0)) taker.resolve({ value: undefined, done: true });
  }

  /** Ends the stream with an error, thrown after what is queued. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failed = true;
    this.error = error;
    for (const taker of this.takers.splice(0)) taker.reject(error);
  }

  next(): Promise<IteratorResult<EngineOutput>> {
    const value = this.queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.failed) {
      this.failed = false; // throw once, then report done
      return Promise.reject(this.error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.takers.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<EngineOutput>> {
    this.queue.length = 0;
    if (!this.ended) {
      this.ended = true;
      this.onReturn();
    }
    this.failed = false;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<EngineOutput> {
    return this;
  }
}

/** Makes `target` stand for itself followed by `next`. */
export function mergeInto(target: EngineOutput, next: EngineOutput): void {
  for (const token of next.tokenIds) target.tokenIds.push(token);
  if (next.finishReason !== undefined) target.finishReason = next.finishReason;
  if (target.cachedTokens === undefined && next.cachedTokens !== undefined) target.cachedTokens = next.cachedTokens;
  if (target.promptTokens === undefined && next.promptTokens !== undefined) target.promptTokens = next.promptTokens;
}
