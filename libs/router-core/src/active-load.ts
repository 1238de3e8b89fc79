// Active load the router itself has placed on workers: prefill tokens count until the
// first token (MarkPrefillComplete), decode blocks and the request until Free. Entries
// nobody freed (a lost frontend) are swept after a maximum age.

interface Entry {
  workerId: string;
  prefillTokens: number;
  decodeBlocks: number;
  startedAt: number;
}

export interface WorkerActiveLoad {
  requests: number;
  prefillTokens: number;
  decodeBlocks: number;
}

export class ActiveLoadTracker {
  private readonly byRequest = new Map<string, Entry>();
  private readonly byWorker = new Map<string, WorkerActiveLoad>();

  private totals(workerId: string): WorkerActiveLoad {
    let t = this.byWorker.get(workerId);
    if (!t) {
      t = { requests: 0, prefillTokens: 0, decodeBlocks: 0 };
      this.byWorker.set(workerId, t);
    }
    return t;
  }

  /** Records a routed request (replacing an earlier entry with the same id). */
  add(requestId: string, workerId: string, prefillTokens: number, decodeBlocks: number, now = Date.now()): void {
    this.free(requestId);
    this.byRequest.set(requestId, { workerId, prefillTokens, decodeBlocks, startedAt: now });
    const t = this.totals(workerId);
    t.requests++;
    t.prefillTokens += prefillTokens;
    t.decodeBlocks += decodeBlocks;
  }

  /** The request's prompt is computed; its prefill tokens no longer count. */
  prefillComplete(requestId: string): boolean {
    const e = this.byRequest.get(requestId);
    if (!e) return false;
    this.totals(e.workerId).prefillTokens -= e.prefillTokens;
    e.prefillTokens = 0;
    return true;
  }

  /** The request ended; returns the worker it was on. */
  free(requestId: string): string | undefined {
    const e = this.byRequest.get(requestId);
    if (!e) return undefined;
    this.byRequest.delete(requestId);
    const t = this.totals(e.workerId);
    t.requests--;
    t.prefillTokens -= e.prefillTokens;
    t.decodeBlocks -= e.decodeBlocks;
    if (t.requests === 0) this.byWorker.delete(e.workerId);
    return e.workerId;
  }

  /** Drops every request of a worker that is gone. */
  dropWorker(workerId: string): void {
    for (const [id, e] of this.byRequest) if (e.workerId === workerId) this.byRequest.delete(id);
    this.byWorker.delete(workerId);
  }

  /** Frees entries older than maxAgeMs (default 5 min); returns how many. */
  sweep(maxAgeMs = 300_000, now = Date.now()): number {
    let n = 0;
    for (const [id, e] of this.byRequest) {
      if (now - e.startedAt > maxAgeMs) {
        this.free(id);
        n++;
      }
    }
    return n;
  }

  of(workerId: string): WorkerActiveLoad {
    const t = this.byWorker.get(workerId);
    return t ? { ...t } : { requests: 0, prefillTokens: 0, decodeBlocks: 0 };
  }

  get size(): number {
    return this.byRequest.size;
  }
}
