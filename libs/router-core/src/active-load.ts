// Active load the routers have placed on workers: prefill tokens count until the first
// token (prefillComplete), the request and its KV blocks until free. Blocks are counted
// once per worker however many in-flight requests share them (a common system prompt
// occupies its blocks once), so a worker's decode load is its unique in-use blocks plus
// each request's partial last block. Entries nobody freed (a lost frontend, a lost
// replica message) are swept after a maximum age.
//
// Replicas: an entry may carry the id of the router replica that created it, so that a
// replica that leaves takes its entries with it (dropOrigin).

/** What a routed request adds to its worker's load. */
export interface ActiveRequest {
  /** Prompt tokens the worker must compute (not found in its cache). */
  prefillTokens: number;
  /** Sequence hashes of the prompt's full blocks, as u32 limb pairs [lo, hi, ...]. */
  blockHashes: Uint32Array;
  /** Full blocks in blockHashes to count (default blockHashes.length / 2). */
  fullBlocks?: number;
  /** Prompt blocks including a partial last one (default fullBlocks). */
  promptBlocks?: number;
}

interface Entry {
  workerId: string;
  prefillTokens: number;
  /** Prefill tokens as routed (restorePrefill puts them back). */
  routedPrefillTokens: number;
  blockKeys: number[];
  /** Blocks of this request not shared with anyone: its partial last block. */
  ownBlocks: number;
  startedAt: number;
  origin: string | undefined;
}

export interface WorkerActiveLoad {
  requests: number;
  prefillTokens: number;
  decodeBlocks: number;
}

interface WorkerTotals {
  requests: number;
  prefillTokens: number;
  ownBlocks: number;
  /** Block key -> in-flight requests using it. */
  blocks: Map<number, number>;
}

const TWO_32 = 2 ** 32;

/** A block's map key: the low 52 bits of its 64-bit sequence hash, exact as a double. */
function blockKey(limbs: Uint32Array, i: number): number {
  return limbs[2 * i]! + (limbs[2 * i + 1]! & 0xfffff) * TWO_32;
}

export class ActiveLoadTracker {
  private readonly byRequest = new Map<string, Entry>();
  private readonly byWorker = new Map<string, WorkerTotals>();

  private totals(workerId: string): WorkerTotals {
    let t = this.byWorker.get(workerId);
    if (!t) {
      t = { requests: 0, prefillTokens: 0, ownBlocks: 0, blocks: new Map() };
      this.byWorker.set(workerId, t);
    }
    return t;
  }

  /** Records a routed request (replacing an earlier entry with the same id). */
  add(requestId: string, workerId: string, request: ActiveRequest, now = Date.now(), origin?: string): void {
    this.free(requestId);
    const fullBlocks = request.fullBlocks ?? request.blockHashes.length >>> 1;
    const promptBlocks = Math.max(request.promptBlocks ?? fullBlocks, fullBlocks);
    const t = this.totals(workerId);
    const blockKeys = new Array<number>(fullBlocks);
    for (let i = 0; i < fullBlocks; i++) {
      const key = blockKey(request.blockHashes, i);
      blockKeys[i] = key;
      t.blocks.set(key, (t.blocks.get(key) ?? 0) + 1);
    }
    const ownBlocks = promptBlocks - fullBlocks;
    const prefillTokens = Math.max(0, request.prefillTokens);
    this.byRequest.set(requestId, {
      workerId,
      prefillTokens,
      routedPrefillTokens: prefillTokens,
      blockKeys,
      ownBlocks,
      startedAt: now,
      origin,
    });
    t.requests++;
    t.prefillTokens += prefillTokens;
    t.ownBlocks += ownBlocks;
  }

  /** The request's prompt is computed; its prefill tokens no longer count. Returns false if unknown. */
  prefillComplete(requestId: string): boolean {
    const e = this.byRequest.get(requestId);
    if (!e) return false;
    const t = this.byWorker.get(e.workerId);
    if (t) t.prefillTokens -= e.prefillTokens;
    e.prefillTokens = 0;
    return true;
  }

  /**
   * The request's prompt is computed on its worker after all (its prefill had been counted
   * elsewhere): its prefill tokens as routed count again, once. Returns false if unknown.
   */
  restorePrefill(requestId: string): boolean {
    const e = this.byRequest.get(requestId);
    if (!e) return false;
    if (e.prefillTokens === 0) {
      e.prefillTokens = e.routedPrefillTokens;
      const t = this.byWorker.get(e.workerId);
      if (t) t.prefillTokens += e.prefillTokens;
    }
    return true;
  }

  /** The request ended; returns the worker it was on (undefined if unknown). */
  free(requestId: string): string | undefined {
    const e = this.byRequest.get(requestId);
    if (!e) return undefined;
    this.byRequest.delete(requestId);
    const t = this.byWorker.get(e.workerId);
    if (!t) return e.workerId;
    t.requests--;
    t.prefillTokens -= e.prefillTokens;
    t.ownBlocks -= e.ownBlocks;
    for (const key of e.blockKeys) {
      const n = t.blocks.get(key)!;
      if (n <= 1) t.blocks.delete(key);
      else t.blocks.set(key, n - 1);
    }
    if (t.requests === 0) this.byWorker.delete(e.workerId);
    return e.workerId;
  }

  /** Drops every request of a worker that is gone. */
  dropWorker(workerId: string): void {
    for (const [id, e] of this.byRequest) if (e.workerId === workerId) this.byRequest.delete(id);
    this.byWorker.delete(workerId);
  }

  /** Frees every entry a replica created (the replica left); returns how many. */
  dropOrigin(origin: string): number {
    let n = 0;
    for (const [id, e] of this.byRequest) {
      if (e.origin === origin) {
        this.free(id);
        n++;
      }
    }
    return n;
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

  /** Leading blocks of `blockHashes` that the worker's in-flight requests already use. */
  activePrefixBlocks(workerId: string, blockHashes: Uint32Array, fullBlocks = blockHashes.length >>> 1): number {
    const t = this.byWorker.get(workerId);
    if (!t) return 0;
    let i = 0;
    while (i < fullBlocks && t.blocks.has(blockKey(blockHashes, i))) i++;
    return i;
  }

  of(workerId: string): WorkerActiveLoad {
    const t = this.byWorker.get(workerId);
    if (!t) return { requests: 0, prefillTokens: 0, decodeBlocks: 0 };
    return { requests: t.requests, prefillTokens: t.prefillTokens, decodeBlocks: t.blocks.size + t.ownBlocks };
  }

  /** The worker a request is on, if tracked. */
  workerOf(requestId: string): string | undefined {
    return this.byRequest.get(requestId)?.workerId;
  }

  get size(): number {
    return this.byRequest.size;
  }
}
