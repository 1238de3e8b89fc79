// cache-aware: SGLang's cache_aware policy. It keeps its own approximate prefix tree, fed
// only by its own decisions (a worker is predicted to hold every prompt it was sent, for
// evictionTtlMs), so it works with engines that publish no KV events and ignores the
// router's precise index. Load balance overrides cache affinity when the spread of
// in-flight requests is wide both absolutely and relatively.
import { ApproxKvIndexer } from '@armature/kv';
import type { PolicyEnv, PolicyFactory, RouteInput, RoutingPolicy, WorkerView } from '../../types.js';
import { numberParam, rejectUnknownParams } from '../params.js';
import { highest, lowest, pickAtRandom } from '../pick.js';

export interface CacheAwareParams {
  /** Imbalance needs maxLoad − minLoad above this many requests (default 64). */
  balanceAbsThreshold: number;
  /** ... and maxLoad above this multiple of minLoad (default 1.5). */
  balanceRelThreshold: number;
  /** The best match goes to its worker when its share of the prompt is above this (default 0.3). */
  cacheThreshold: number;
  /** How long a routed prompt is predicted to stay cached, in ms (default 120 000). */
  evictionTtlMs: number;
  /** Most (worker, block) predictions kept; the oldest are pruned past it (default 2^26). */
  maxTreeBlocks: number;
}

export const CACHE_AWARE_DEFAULTS: CacheAwareParams = {
  balanceAbsThreshold: 64,
  balanceRelThreshold: 1.5,
  cacheThreshold: 0.3,
  evictionTtlMs: 120_000,
  maxTreeBlocks: 2 ** 26,
};

/** Validates cache-aware's parameters, filling in CACHE_AWARE_DEFAULTS; throws naming the bad parameter. */
export function compileCacheAwareParams(raw: Record<string, unknown>): CacheAwareParams {
  const id = 'cache-aware';
  const d = CACHE_AWARE_DEFAULTS;
  rejectUnknownParams(id, raw, Object.keys(d));
  return {
    balanceAbsThreshold: numberParam(id, raw, 'balanceAbsThreshold', d.balanceAbsThreshold, { min: 0 }),
    balanceRelThreshold: numberParam(id, raw, 'balanceRelThreshold', d.balanceRelThreshold, { min: 0 }),
    cacheThreshold: numberParam(id, raw, 'cacheThreshold', d.cacheThreshold, { min: 0, max: 1 }),
    evictionTtlMs: numberParam(id, raw, 'evictionTtlMs', d.evictionTtlMs, { min: 0, minExclusive: true }),
    maxTreeBlocks: numberParam(id, raw, 'maxTreeBlocks', d.maxTreeBlocks, {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
      integer: true,
    }),
  };
}

/** In-flight requests the routers have sent the worker: SGLang's queue length. */
const load = (w: WorkerView): number => w.tracked.requests;

/** Whether the load spread is wide enough that balance overrides cache affinity. */
export function isImbalanced(candidates: readonly WorkerView[], params: CacheAwareParams): boolean {
  const loads = candidates.map(load);
  const maxLoad = Math.max(...loads);
  const minLoad = Math.min(...loads);
  return maxLoad - minLoad > params.balanceAbsThreshold && maxLoad > params.balanceRelThreshold * minLoad;
}

function choose(
  candidates: readonly WorkerView[],
  input: RouteInput,
  params: CacheAwareParams,
  tree: ApproxKvIndexer,
  env: PolicyEnv,
): WorkerView {
  if (isImbalanced(candidates, params)) return pickAtRandom(lowest(candidates, load), env.random);
  const matches = tree.findMatches(input.blockHashes, input.blockHashes.length >>> 1, env.now());
  const depthOf = (w: WorkerView): number =>
    matches.workers.find((m) => m.instanceId === w.instanceId && m.dpRank === w.dpRank)?.depth ?? 0;
  const bestMatched = highest(candidates, depthOf);
  const matchRatio = input.promptBlocks > 0 ? depthOf(bestMatched[0]!) / input.promptBlocks : 0;
  if (matchRatio > params.cacheThreshold) return pickAtRandom(lowest(bestMatched, load), env.random);
  // Little to reuse anywhere: start the prompt where the tree has the most room.
  return pickAtRandom(
    lowest(candidates, (w) => tree.blocksOf(w.instanceId, w.dpRank)),
    env.random,
  );
}

export const cacheAware = {
  id: 'cache-aware',
  create(raw, env): RoutingPolicy {
    const params = compileCacheAwareParams(raw);
    const tree = new ApproxKvIndexer({ ttlMs: params.evictionTtlMs, maxBlocks: params.maxTreeBlocks });
    return {
      id: 'cache-aware',
      choose(candidates, input) {
        return { worker: choose(candidates, input, params, tree, env) };
      },
      observe(input, worker) {
        tree.record(worker.instanceId, worker.dpRank, input.blockHashes, input.blockHashes.length >>> 1, env.now());
      },
      forgetWorker(instanceId) {
        tree.removeWorker(instanceId);
      },
    };
  },
} satisfies PolicyFactory;
