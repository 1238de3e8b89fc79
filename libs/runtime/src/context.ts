// The request context carried through every stage of a request: its id, the signal that
// cancels it everywhere, and its deadline.
import { randomUUID } from 'node:crypto';
import { ArmatureError } from './errors.js';

export interface RequestContextOptions {
  id?: string;
  /** Absolute deadline, epoch milliseconds. */
  deadline?: number;
  /** Cancel this context when the parent signal aborts. */
  parent?: AbortSignal;
}

export class RequestContext {
  readonly id: string;
  readonly deadline: number | undefined;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: RequestContextOptions = {}) {
    this.id = options.id ?? randomUUID();
    this.deadline = options.deadline;
    if (options.parent) {
      if (options.parent.aborted) this.cancel(options.parent.reason);
      else options.parent.addEventListener('abort', () => this.cancel(options.parent?.reason), { once: true });
    }
    if (this.deadline !== undefined) {
      const ms = Math.max(0, this.deadline - Date.now());
      this.timer = setTimeout(
        () => this.cancel(new ArmatureError('deadline_exceeded', 'deadline_exceeded', 'request deadline exceeded')),
        ms,
      );
      this.timer.unref();
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get cancelled(): boolean {
    return this.controller.signal.aborted;
  }

  /** Cancels the request; idempotent. */
  cancel(reason?: unknown): void {
    if (this.timer) clearTimeout(this.timer);
    if (!this.controller.signal.aborted) {
      this.controller.abort(reason ?? new ArmatureError('cancelled', 'cancelled', 'request cancelled'));
    }
  }

  /** Throws the cancellation reason if the request was cancelled. */
  throwIfCancelled(): void {
    if (this.controller.signal.aborted) {
      const reason: unknown = this.controller.signal.reason;
      throw reason instanceof Error ? reason : new ArmatureError('cancelled', 'cancelled', 'request cancelled');
    }
  }

  /** Releases the deadline timer once the request is over. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
