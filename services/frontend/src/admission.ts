// Admission control at the door, before a request costs anything (tokenizing, routing):
// at most `maxInflight` requests per model run at once, the next `queueSize` wait in
// arrival order for at most `queueTimeoutMs`, and the rest are refused at once with 503
// and Retry-After, so overload is answered quickly instead of by growing memory and
// latency. A client's own concurrency (`maxInflightPerClient`, keyed by its API key) is
// refused with 429. Memory is bounded by the limits, whatever the load.
import { ArmatureError } from '@armature/runtime';

export interface AdmissionOptions {
  /** Requests running at once per model (default 512; 0: no limit). */
  maxInflight?: number;
  /** Requests waiting for a slot per model (default 1024). */
  queueSize?: number;
  /** Longest wait for a slot, ms (default 10 000). */
  queueTimeoutMs?: number;
  /** Requests one client (API key) may have running or waiting at once (default 0: no limit). */
  maxInflightPerClient?: number;
}

/** Why a request is refused at the door (armature_frontend_admission_rejected_total's reason). */
export const ADMISSION_REJECT_REASONS = ['queue_full', 'queue_timeout', 'client_limit'] as const;

export type AdmissionRejectReason = (typeof ADMISSION_REJECT_REASONS)[number];

/** A refusal with the seconds a client should wait before retrying (the Retry-After header). */
export class AdmissionError extends ArmatureError {
  constructor(
    cls: 'unavailable' | 'resource_exhausted',
    reason: string,
    message: string,
    readonly retryAfterS: number,
  ) {
    super(cls, reason, message);
  }
}

interface Waiter {
  admit(): void;
  timer: NodeJS.Timeout;
}

interface ModelGate {
  running: number;
  queue: Waiter[];
}

export interface AdmissionObserver {
  rejected?(model: string, reason: AdmissionRejectReason): void;
  waited?(model: string, seconds: number): void;
  depth?(model: string, running: number, waiting: number): void;
}

export class Admission {
  private readonly maxInflight: number;
  private readonly queueSize: number;
  private readonly queueTimeoutMs: number;
  private readonly maxPerClient: number;
  private readonly gates = new Map<string, ModelGate>();
  private readonly clients = new Map<string, number>();

  constructor(
    options: AdmissionOptions = {},
    private readonly observer: AdmissionObserver = {},
  ) {
    this.maxInflight = options.maxInflight ?? 512;
    this.queueSize = options.queueSize ?? 1024;
    this.queueTimeoutMs = options.queueTimeoutMs ?? 10_000;
    this.maxPerClient = options.maxInflightPerClient ?? 0;
    for (const [key, v] of Object.entries({
      maxInflight: this.maxInflight,
      queueSize: this.queueSize,
      queueTimeoutMs: this.queueTimeoutMs,
      maxInflightPerClient: this.maxPerClient,
    })) {
      if (!Number.isSafeInteger(v) || v < 0)
        throw new ArmatureError('invalid_argument', 'bad_config', `admission ${key} must be an integer >= 0, got ${v}`);
    }
  }

  /**
   * Waits for a slot for one request of `model` from `client`; resolves with the release
   * (call it exactly once when the request ends). Rejects with AdmissionError when the
   * queue is full or the wait times out, with `cancelled` when `signal` aborts.
   */
  async admit(model: string, client: string, signal: AbortSignal): Promise<() => void> {
    const ownCount = this.clients.get(client) ?? 0;
    if (this.maxPerClient > 0 && ownCount >= this.maxPerClient) {
      this.observer.rejected?.(model, 'client_limit');
      throw new AdmissionError(
        'resource_exhausted',
        'client_concurrency_limit',
        `this client already has ${ownCount} requests in progress (limit ${this.maxPerClient}); retry when one finishes`,
        1,
      );
    }
    const gate = this.gate(model);
    if (this.maxInflight === 0 || (gate.running < this.maxInflight && gate.queue.length === 0)) {
      return this.take(model, gate, client);
    }
    if (gate.queue.length >= this.queueSize) {
      this.observer.rejected?.(model, 'queue_full');
      throw new AdmissionError(
        'unavailable',
        'overloaded',
        `the server is at capacity for model ${JSON.stringify(model)} (${gate.running} running, ${gate.queue.length} waiting); retry later`,
        1,
      );
    }
    const enqueued = performance.now();
    this.clients.set(client, ownCount + 1); // a waiting request counts against its client too
    try {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          admit: () => {
            clearTimeout(waiter.timer);
            signal.removeEventListener('abort', onAbort);
            resolve();
          },
          timer: setTimeout(() => {
            leave();
            this.observer.rejected?.(model, 'queue_timeout');
            reject(
              new AdmissionError(
                'unavailable',
                'overloaded',
                `the server stayed at capacity for model ${JSON.stringify(model)} for ${this.queueTimeoutMs} ms; retry later`,
                1,
              ),
            );
          }, this.queueTimeoutMs),
        };
        const leave = (): void => {
          clearTimeout(waiter.timer);
          signal.removeEventListener('abort', onAbort);
          const i = gate.queue.indexOf(waiter);
          if (i >= 0) gate.queue.splice(i, 1);
          this.publish(model, gate);
        };
        const onAbort = (): void => {
          leave();
          reject(new ArmatureError('cancelled', 'client_disconnected', 'client disconnected while waiting'));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        gate.queue.push(waiter);
        this.publish(model, gate);
      });
    } finally {
      this.release(client);
    }
    this.observer.waited?.(model, (performance.now() - enqueued) / 1000);
    return this.take(model, gate, client, true);
  }

  /** Requests running and waiting for a model now. */
  load(model: string): { running: number; waiting: number } {
    const g = this.gates.get(model);
    return { running: g?.running ?? 0, waiting: g?.queue.length ?? 0 };
  }

  /** A slot: a free one, or (`handedOver`) the one a finished request passed to this waiter. */
  private take(model: string, gate: ModelGate, client: string, handedOver = false): () => void {
    if (!handedOver) gate.running++;
    this.clients.set(client, (this.clients.get(client) ?? 0) + 1);
    this.publish(model, gate);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(client);
      // The slot passes to the longest waiter as it is, so no newcomer can slip in between.
      const next = gate.queue.shift();
      if (next) next.admit();
      else gate.running--;
      this.publish(model, gate);
    };
  }

  private release(client: string): void {
    const n = (this.clients.get(client) ?? 1) - 1;
    if (n <= 0) this.clients.delete(client);
    else this.clients.set(client, n);
  }

  private gate(model: string): ModelGate {
    let g = this.gates.get(model);
    if (!g) {
      g = { running: 0, queue: [] };
      this.gates.set(model, g);
    }
    return g;
  }

  private publish(model: string, gate: ModelGate): void {
    this.observer.depth?.(model, gate.running, gate.queue.length);
  }
}
