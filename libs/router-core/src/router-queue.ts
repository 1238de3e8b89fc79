// The router's waiting room: when every worker is busy a request waits here instead of
// piling onto an overloaded worker, and leaves in first-come-first-served or
// shortest-prompt-first order as capacity frees up. Bounded: past its capacity a request
// is refused at once (the frontend answers 503), and a request that waits past its
// timeout is refused too. It holds items and orders them; it does not decide when a
// worker has room (the router retries `drain` when load changes).

/** Why a waiting request is refused: the queue was full, or it waited past the timeout. */
export const QUEUE_REJECT_REASONS = ['full', 'timeout'] as const;

export type QueueRejectReason = (typeof QUEUE_REJECT_REASONS)[number];

export type QueueOrder = 'fcfs' | 'shortest-prompt';

export interface RouterQueueOptions {
  /** Most requests waiting at once (default 1024); 0 disables queueing. */
  capacity?: number;
  order?: QueueOrder;
  /** Longest wait before a request is refused, ms (default 30 000). */
  timeoutMs?: number;
}

export interface QueuedItem {
  /** Prompt tokens, for shortest-prompt-first. */
  promptTokens: number;
  /** Enqueue time, ms. */
  enqueuedAt: number;
}

export class RouterQueue<T extends QueuedItem> {
  readonly capacity: number;
  readonly order: QueueOrder;
  readonly timeoutMs: number;
  private items: T[] = [];

  constructor(options: RouterQueueOptions = {}) {
    this.capacity = options.capacity ?? 1024;
    this.order = options.order ?? 'fcfs';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (!Number.isInteger(this.capacity) || this.capacity < 0) {
      throw new RangeError(`queue.capacity must be an integer >= 0, got ${options.capacity}`);
    }
    if (this.order !== 'fcfs' && this.order !== 'shortest-prompt') {
      throw new RangeError(`queue.order must be fcfs or shortest-prompt, got ${JSON.stringify(options.order)}`);
    }
    if (!(this.timeoutMs > 0)) throw new RangeError(`queue.timeoutMs must be > 0, got ${options.timeoutMs}`);
  }

  /** Adds an item; false when the queue is full. */
  push(item: T): boolean {
    if (this.items.length >= this.capacity) return false;
    if (this.order === 'fcfs') {
      this.items.push(item);
      return true;
    }
    // Stable insertion: equal prompts keep arrival order.
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.promptTokens <= item.promptTokens) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, item);
    return true;
  }

  /**
   * Offers waiting items to `tryPlace` in queue order until one cannot be placed (head-of-line:
   * later items do not overtake it); returns how many were placed.
   */
  drain(tryPlace: (item: T) => boolean): number {
    let placed = 0;
    while (this.items.length > 0) {
      if (!tryPlace(this.items[0]!)) break;
      this.items.shift();
      placed++;
    }
    return placed;
  }

  /** Removes and returns the items that have waited longer than the timeout. */
  expire(now: number): T[] {
    const expired = this.items.filter((i) => now - i.enqueuedAt >= this.timeoutMs);
    if (expired.length > 0) this.items = this.items.filter((i) => now - i.enqueuedAt < this.timeoutMs);
    return expired;
  }

  /** Removes one item (its caller gave up); true if it was waiting. */
  remove(item: T): boolean {
    const i = this.items.indexOf(item);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  get length(): number {
    return this.items.length;
  }
}
