import { describe, expect, it } from 'vitest';
import type { RouteInput, RoutingPolicy, WorkerView } from '../../types.js';
import { createPolicy } from '../index.js';
import { routeInput, tally, testEnv, worker } from '../test-fixtures.js';
import { CACHE_AWARE_DEFAULTS, compileCacheAwareParams, isImbalanced } from './index.js';

const busy = (id: string, requests: number, dpRank = 0): WorkerView => worker(id, { tracked: { requests }, dpRank });

/** `input` with its first `shared` block hashes taken from `from` (the rest its own). */
function sharing(input: RouteInput, from: RouteInput, shared: number): RouteInput {
  const blockHashes = input.blockHashes.slice();
  blockHashes.set(from.blockHashes.subarray(0, 2 * shared));
  return { ...input, blockHashes };
}

function routeAndObserve(p: RoutingPolicy, candidates: readonly WorkerView[], input: RouteInput): WorkerView {
  const chosen = p.choose(candidates, input).worker;
  p.observe!(input, chosen);
  return chosen;
}

describe('cache-aware', () => {
  it('sends to the least loaded when the spread is wide both absolutely and relatively', () => {
    const params = CACHE_AWARE_DEFAULTS;
    expect(isImbalanced([busy('a', 100), busy('b', 10)], params)).toBe(true); // 90 > 64, 100 > 15
    expect(isImbalanced([busy('a', 100), busy('b', 40)], params)).toBe(false); // 60 <= 64
    expect(isImbalanced([busy('a', 300), busy('b', 230)], params)).toBe(false); // 70 > 64, 300 <= 345
    const p = createPolicy('cache-aware', {}, testEnv());
    const prompt = routeInput(10, 1);
    p.observe!(prompt, busy('a', 0));
    // a caches the whole prompt but is swamped.
    expect(p.choose([busy('a', 100), busy('b', 10), busy('c', 20)], prompt).worker.instanceId).toBe('b');
    // Within the thresholds the cache wins over load.
    expect(p.choose([busy('a', 100), busy('b', 40)], prompt).worker.instanceId).toBe('a');
    expect(p.choose([busy('a', 300), busy('b', 230)], prompt).worker.instanceId).toBe('a');
  });

  it('breaks least-loaded ties at random when imbalanced', () => {
    const p = createPolicy('cache-aware', {}, testEnv(2));
    const ws = [busy('a', 100), busy('b', 0), busy('c', 0)];
    const counts = tally(300, () => p.choose(ws, routeInput(4)).worker);
    expect(counts.get('b')).toBeGreaterThan(100);
    expect(counts.get('c')).toBeGreaterThan(100);
    expect(counts.get('a')).toBeUndefined();
  });

  it('makes a repeated prompt stick to the worker it was first sent to', () => {
    const p = createPolicy('cache-aware', {}, testEnv(3));
    const ws = ['a', 'b', 'c', 'd'].map((id) => worker(id));
    const prompt = routeInput(12, 7);
    const first = routeAndObserve(p, ws, prompt);
    for (let i = 0; i < 30; i++) expect(routeAndObserve(p, ws, prompt)).toBe(first);
    // Without observe() nothing is learnt: the same prompt spreads over every empty tree.
    const forgetful = createPolicy('cache-aware', {}, testEnv(3));
    expect(tally(200, () => forgetful.choose(ws, prompt).worker).size).toBe(4);
  });

  it('goes to the best match only when it covers more than cacheThreshold of the prompt', () => {
    const ws = [worker('a'), worker('b')];
    const seen = routeInput(10, 1);
    const setUp = (): RoutingPolicy => {
      const p = createPolicy('cache-aware', {}, testEnv(4));
      p.observe!(seen, ws[0]!); // a: 9 blocks
      p.observe!(routeInput(2, 2), ws[1]!); // b: 1 block, a smaller tree
      return p;
    };
    // 4 of 10 blocks matched on a: 0.4 > 0.3, so a.
    const p = setUp();
    expect(p.choose(ws, sharing(routeInput(10, 3), seen, 4)).worker.instanceId).toBe('a');
    // 3 of 10: 0.3 is not above the threshold, so the smallest tree, b.
    expect(setUp().choose(ws, sharing(routeInput(10, 3), seen, 3)).worker.instanceId).toBe('b');
    // A lower threshold takes the 3-block match.
    const eager = createPolicy('cache-aware', { cacheThreshold: 0.2 }, testEnv(4));
    eager.observe!(seen, ws[0]!);
    eager.observe!(routeInput(2, 2), ws[1]!);
    expect(eager.choose(ws, sharing(routeInput(10, 3), seen, 3)).worker.instanceId).toBe('a');
  });

  it('breaks best-match ties by load, then at random', () => {
    const p = createPolicy('cache-aware', {}, testEnv(5));
    const prompt = routeInput(8, 1);
    p.observe!(prompt, worker('a'));
    p.observe!(prompt, worker('b'));
    p.observe!(prompt, worker('c'));
    const ws = [busy('a', 3), busy('b', 1), busy('c', 1), busy('d', 0)];
    const counts = tally(300, () => p.choose(ws, prompt).worker);
    expect(counts.get('b')).toBeGreaterThan(100);
    expect(counts.get('c')).toBeGreaterThan(100);
    expect(counts.get('a')).toBeUndefined();
    expect(counts.get('d')).toBeUndefined(); // least loaded, but caches nothing
  });

  it('starts an unseen prompt on the worker with the smallest tree, ties at random', () => {
    const p = createPolicy('cache-aware', {}, testEnv(6));
    p.observe!(routeInput(20, 1), worker('a'));
    p.observe!(routeInput(5, 2), worker('b'));
    const fresh = routeInput(6, 99);
    expect(p.choose([worker('a'), worker('b')], fresh).worker.instanceId).toBe('b');
    const counts = tally(300, () => p.choose([worker('a'), worker('b'), worker('c'), worker('d')], fresh).worker);
    expect(counts.get('c')).toBeGreaterThan(100);
    expect(counts.get('d')).toBeGreaterThan(100);
    expect(counts.get('a')).toBeUndefined();
    expect(counts.get('b')).toBeUndefined();
  });

  it('keeps data-parallel ranks of one instance apart', () => {
    const p = createPolicy('cache-aware', {}, testEnv(7));
    const prompt = routeInput(8, 1);
    p.observe!(prompt, worker('a', { dpRank: 1 }));
    p.observe!(routeInput(3, 5), worker('a', { dpRank: 0 }));
    const ranks = [worker('a', { dpRank: 0 }), worker('a', { dpRank: 1 })];
    expect(p.choose(ranks, prompt).worker.dpRank).toBe(1);
  });

  it('forgets a worker that left', () => {
    const p = createPolicy('cache-aware', {}, testEnv(8));
    const prompt = routeInput(8, 1);
    const ws = [worker('a'), worker('b')];
    p.observe!(prompt, ws[0]!);
    for (let i = 0; i < 20; i++) expect(p.choose(ws, prompt).worker.instanceId).toBe('a');
    p.forgetWorker!('a');
    const counts = tally(200, () => p.choose(ws, prompt).worker);
    expect(counts.get('a')).toBeGreaterThan(50);
    expect(counts.get('b')).toBeGreaterThan(50);
  });

  it('lets predictions expire after evictionTtlMs', () => {
    const env = testEnv(9);
    const p = createPolicy('cache-aware', { evictionTtlMs: 1000 }, env);
    const prompt = routeInput(8, 1);
    const ws = [worker('a'), worker('b')];
    p.observe!(prompt, ws[0]!);
    env.clock.ms += 999;
    expect(p.choose(ws, prompt).worker.instanceId).toBe('a');
    env.clock.ms += 1;
    const counts = tally(200, () => p.choose(ws, prompt).worker);
    expect(counts.get('b')).toBeGreaterThan(50);
  });

  it('caps its tree at maxTreeBlocks, pruning the oldest predictions', () => {
    const first = routeInput(10, 1); // 9 full blocks
    const second = routeInput(10, 2);
    const ws = [worker('a'), worker('b')];
    const run = (params: Record<string, unknown>): string => {
      const p = createPolicy('cache-aware', params, testEnv(10));
      p.observe!(first, ws[0]!);
      p.observe!(second, ws[0]!);
      return p.choose(ws, first).worker.instanceId;
    };
    expect(run({})).toBe('a');
    // 18 predictions > 10: pruned to 8, the first prompt's blocks first. a keeps no match
    // for it and the bigger tree, so the prompt goes to b.
    expect(run({ maxTreeBlocks: 10 })).toBe('b');
  });

  it('validates its parameters', () => {
    expect(compileCacheAwareParams({})).toEqual({
      balanceAbsThreshold: 64,
      balanceRelThreshold: 1.5,
      cacheThreshold: 0.3,
      evictionTtlMs: 120_000,
      maxTreeBlocks: 2 ** 26,
    });
    expect(() => createPolicy('cache-aware', { cacheThreshold: 1.5 })).toThrow(
      /cache-aware: cacheThreshold must be a number >= 0 <= 1/,
    );
    expect(() => createPolicy('cache-aware', { balanceAbsThreshold: -1 })).toThrow(/cache-aware: balanceAbsThreshold/);
    expect(() => createPolicy('cache-aware', { balanceRelThreshold: 'x' })).toThrow(/cache-aware: balanceRelThreshold/);
    expect(() => createPolicy('cache-aware', { evictionTtlMs: 0 })).toThrow(
      /cache-aware: evictionTtlMs must be a number > 0/,
    );
    expect(() => createPolicy('cache-aware', { maxTreeBlocks: 1.5 })).toThrow(
      /cache-aware: maxTreeBlocks must be an integer/,
    );
    expect(() => createPolicy('cache-aware', { ttl: 5 })).toThrow(/cache-aware: unknown parameter "ttl"/);
  });
});
