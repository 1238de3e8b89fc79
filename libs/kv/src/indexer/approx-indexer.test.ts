// ApproxKvIndexer: predictions expire after the TTL, re-recording refreshes them (an older
// FIFO entry must not drop a refreshed prediction), the size bound prunes the oldest, and a
// property test against a naive model of expiries and record order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { limbsFromHashes } from '../hashing.js';
import { ApproxKvIndexer } from './approx-indexer.js';
import type { WorkerOverlap } from './types.js';

const chain = (start: number, count: number): Uint32Array =>
  limbsFromHashes(Array.from({ length: count }, (_, i) => BigInt(start + i) * 0x9e3779b97f4a7c15n + 1n));

const depths = (workers: WorkerOverlap[]): Record<string, number> =>
  Object.fromEntries(workers.map((w) => [`${w.instanceId}/${w.dpRank}`, w.depth]));

describe('ApproxKvIndexer', () => {
  it('predicts the blocks a worker was sent, all on device', () => {
    const approx = new ApproxKvIndexer();
    const prompt = chain(0, 8);
    approx.record('w1', 0, prompt, 5, 0);
    approx.record('w2', 1, prompt, 8, 0);
    const scores = approx.findMatches(prompt, 8, 10);
    expect(scores.queryBlocks).toBe(8);
    expect(scores.workers).toContainEqual({
      instanceId: 'w1',
      dpRank: 0,
      depth: 5,
      tiers: { device: 5, host: 0, disk: 0, remote: 0 },
    });
    expect(depths(scores.workers)).toEqual({ 'w1/0': 5, 'w2/1': 8 });
    expect(approx.size).toBe(13);
    expect(approx.blocksOf('w2')).toBe(8);
    expect(approx.blocksOf('w2', 0)).toBe(0);
  });

  it('expires predictions once their TTL has passed', () => {
    const approx = new ApproxKvIndexer({ ttlMs: 100 });
    const prompt = chain(0, 4);
    approx.record('w', 0, prompt, 4, 0);
    approx.record('v', 0, prompt, 2, 50);
    expect(depths(approx.findMatches(prompt, 4, 99).workers)).toEqual({ 'w/0': 4, 'v/0': 2 });
    expect(approx.expire(100)).toBe(4);
    expect(depths(approx.findMatches(prompt, 4, 100).workers)).toEqual({ 'v/0': 2 });
    expect(approx.findMatches(prompt, 4, 150).workers).toEqual([]);
    expect(approx.size).toBe(0);
  });

  it('refreshes re-recorded blocks: their older FIFO entries drop nothing', () => {
    const approx = new ApproxKvIndexer({ ttlMs: 100 });
    const prompt = chain(0, 6);
    approx.record('w', 0, prompt, 6, 0);
    approx.record('w', 0, prompt, 3, 60);
    expect(approx.expire(100)).toBe(3);
    expect(depths(approx.findMatches(prompt, 6, 159).workers)).toEqual({ 'w/0': 3 });
    expect(approx.findMatches(prompt, 6, 160).workers).toEqual([]);
  });

  it('keeps time from going backwards', () => {
    const approx = new ApproxKvIndexer({ ttlMs: 100 });
    const prompt = chain(0, 2);
    approx.findMatches(prompt, 2, 1000);
    approx.record('w', 0, prompt, 2, 0); // taken as 1000
    expect(depths(approx.findMatches(prompt, 2, 1099).workers)).toEqual({ 'w/0': 2 });
    expect(approx.expire(1100)).toBe(2);
  });

  it('prunes the oldest predictions down to pruneFraction * maxBlocks', () => {
    const approx = new ApproxKvIndexer({ maxBlocks: 100, pruneFraction: 0.8 });
    approx.record('a', 0, chain(0, 60), 60, 0);
    approx.record('b', 0, chain(1000, 30), 30, 1);
    approx.record('a', 0, chain(0, 10), 10, 2); // a's first 10 blocks are now younger than b's
    expect(approx.size).toBe(90);
    approx.record('c', 0, chain(2000, 20), 20, 3);
    // 110 > 100: the 30 oldest go, a's blocks 10..39 (a's 0..9 were refreshed).
    expect(approx.size).toBe(80);
    expect(approx.blocksOf('a')).toBe(30);
    expect(approx.blocksOf('b')).toBe(30);
    expect(depths(approx.findMatches(chain(0, 60), 60, 4).workers)).toEqual({ 'a/0': 10 });
    expect(depths(approx.findMatches(chain(1000, 30), 30, 4).workers)).toEqual({ 'b/0': 30 });
  });

  it('forgets a removed worker, and its stale queue entries harm no later worker in its slot', () => {
    const approx = new ApproxKvIndexer({ ttlMs: 100 });
    const prompt = chain(0, 5);
    approx.record('old', 0, prompt, 5, 0);
    approx.record('old', 1, prompt, 2, 0);
    approx.removeWorker('old');
    expect(approx.size).toBe(0);
    expect(approx.findMatches(prompt, 5, 1).workers).toEqual([]);
    approx.record('new', 0, prompt, 5, 50);
    expect(approx.expire(100)).toBe(0);
    expect(depths(approx.findMatches(prompt, 5, 149).workers)).toEqual({ 'new/0': 5 });
    expect(approx.expire(150)).toBe(5);
  });

  it('keeps its queue bounded under constant refreshes', () => {
    const approx = new ApproxKvIndexer({ ttlMs: 1e9 });
    const prompt = chain(0, 10);
    for (let t = 0; t < 20_000; t++) approx.record('w', 0, prompt, 10, t);
    expect(approx.size).toBe(10);
    expect((approx as unknown as { fifoLength: number }).fifoLength).toBeLessThanOrEqual(2048 + 10);
    expect(approx.expire(1e9 + 19_998)).toBe(0);
    expect(approx.expire(1e9 + 19_999)).toBe(10);
  });

  it('rejects bad options and block counts', () => {
    expect(() => new ApproxKvIndexer({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new ApproxKvIndexer({ maxBlocks: 1.5 })).toThrow(RangeError);
    expect(() => new ApproxKvIndexer({ pruneFraction: 1 })).toThrow(RangeError);
    expect(() => new ApproxKvIndexer().record('w', 0, new Uint32Array(2), 2, 0)).toThrow(RangeError);
  });
});

/** Predictions as a plain map: latest expiry per (worker, block) and when it was last queued. */
class ReferenceApprox {
  private readonly predictions = new Map<string, { worker: string; hash: bigint; expiry: number; queued: number }>();
  private queued = 0;
  private clock = -Infinity;
  constructor(
    private readonly ttl: number,
    private readonly maxBlocks: number,
    private readonly pruneTarget: number,
  ) {}

  get size(): number {
    return this.predictions.size;
  }

  expire(now: number): void {
    this.clock = Math.max(this.clock, now);
    for (const [key, p] of this.predictions) if (p.expiry <= this.clock) this.predictions.delete(key);
  }

  record(worker: string, hashes: bigint[], now: number): void {
    this.expire(now);
    const expiry = this.clock + this.ttl;
    for (const hash of hashes) {
      const key = `${worker}|${hash}`;
      const p = this.predictions.get(key);
      if (!p) this.predictions.set(key, { worker, hash, expiry, queued: this.queued++ });
      else if (p.expiry !== expiry) Object.assign(p, { expiry, queued: this.queued++ });
    }
    if (this.predictions.size > this.maxBlocks) {
      const oldest = [...this.predictions].sort((a, b) => a[1].queued - b[1].queued);
      for (const [key] of oldest) {
        if (this.predictions.size <= this.pruneTarget) break;
        this.predictions.delete(key);
      }
    }
  }

  removeWorker(instanceId: string): void {
    for (const [key, p] of this.predictions) if (p.worker.startsWith(`${instanceId}/`)) this.predictions.delete(key);
  }

  blocksOf(worker: string): number {
    return [...this.predictions.values()].filter((p) => p.worker === worker).length;
  }

  depths(query: bigint[], now: number): Record<string, number> {
    this.expire(now);
    const workers = new Set([...this.predictions.values()].map((p) => p.worker));
    const result: Record<string, number> = {};
    for (const worker of workers) {
      let depth = 0;
      while (depth < query.length && this.predictions.has(`${worker}|${query[depth]}`)) depth++;
      if (depth > 0) result[worker] = depth;
    }
    return result;
  }
}

describe('ApproxKvIndexer: against a naive model', () => {
  const workers = ['x/0', 'x/1', 'y/0'];
  const path = Array.from({ length: 12 }, (_, i) => BigInt(i) * 0x9e3779b97f4a7c15n + 7n);
  const op = fc.record({
    kind: fc.constantFrom('record', 'record', 'record', 'query', 'remove'),
    worker: fc.nat({ max: workers.length - 1 }),
    from: fc.nat({ max: 11 }),
    length: fc.nat({ max: 12 }),
    dt: fc.integer({ min: 0, max: 40 }),
  });

  it('agrees on sizes, per-worker blocks and matches', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const approx = new ApproxKvIndexer({ ttlMs: 100, maxBlocks: 20, pruneFraction: 0.5 });
        const reference = new ReferenceApprox(100, 20, 10);
        let now = 0;
        for (const { kind, worker, from, length, dt } of ops) {
          now += dt;
          const [instanceId, rank] = workers[worker]!.split('/') as [string, string];
          const hashes = path.slice(from, from + length);
          if (kind === 'record') {
            approx.record(instanceId, Number(rank), limbsFromHashes(hashes), hashes.length, now);
            reference.record(workers[worker]!, hashes, now);
          } else if (kind === 'remove') {
            approx.removeWorker(instanceId);
            reference.removeWorker(instanceId);
          }
          expect(depths(approx.findMatches(limbsFromHashes(hashes), hashes.length, now).workers)).toEqual(
            reference.depths(hashes, now),
          );
          expect(approx.size).toBe(reference.size);
          for (const name of workers) {
            const [id, r] = name.split('/') as [string, string];
            expect(approx.blocksOf(id, Number(r))).toBe(reference.blocksOf(name));
          }
        }
      }),
      { numRuns: 300, seed: 8 },
    );
  });
});
