// Prefilled prompts whose KV blocks a prefill worker keeps for a decode worker: each pin
// ends when the decode worker releases it (it holds the blocks, or gave up on them) or
// when its deadline passes (the decode worker died or never came), so blocks can never
// stay pinned forever. It frees through the engine; it does not know about transfers.
import { createLogger } from '@armature/runtime';

const log = createLogger('worker/pins');

/** How long a prefill keeps its blocks for a decode worker unless released (Dynamo's default: 480 s). */
export const DEFAULT_PIN_TIMEOUT_MS = 480_000;

/** How a pin ends (armature_worker_pins_total's how). */
export const PIN_ENDINGS = ['released', 'expired', 'closed'] as const;

export type PinEnding = (typeof PIN_ENDINGS)[number];

export interface PinTableOptions {
  /** Frees a pin's blocks in the engine; returns false when the engine held nothing under the id. */
  release: (pinId: string) => boolean;
  timeoutMs?: number;
  /** Told about every pin that ends, and how. */
  onEnd?: (pinId: string, how: PinEnding) => void;
}

export class PinTable {
  readonly timeoutMs: number;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: PinTableOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PIN_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new RangeError(`pin timeout must be positive, got ${options.timeoutMs}`);
  }

  /** Starts the clock on a pin the engine already holds; returns its deadline (epoch ms). */
  add(pinId: string): number {
    if (this.timers.has(pinId)) throw new Error(`pin ${pinId} already exists`);
    const timer = setTimeout(() => {
      log.warn('a pinned prefill expired before any decode worker released it', { pinId });
      this.end(pinId, 'expired');
    }, this.timeoutMs);
    timer.unref();
    this.timers.set(pinId, timer);
    return Date.now() + this.timeoutMs;
  }

  /** Releases a pin now; false when there is none under the id (already released or expired). */
  release(pinId: string): boolean {
    return this.end(pinId, 'released');
  }

  /** Resolves once no pin is held (each is released by its puller, or expires). */
  idle(): Promise<void> {
    if (this.timers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get size(): number {
    return this.timers.size;
  }

  /** Frees every pin (shutdown). */
  close(): void {
    for (const pinId of [...this.timers.keys()]) this.end(pinId, 'closed');
  }

  private end(pinId: string, how: PinEnding): boolean {
    const timer = this.timers.get(pinId);
    if (!timer) return false;
    clearTimeout(timer);
    this.timers.delete(pinId);
    const freed = this.options.release(pinId);
    if (!freed) log.warn('the engine held no blocks for a pin', { pinId, how });
    this.options.onEnd?.(pinId, how);
    if (this.timers.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    return freed;
  }
}
