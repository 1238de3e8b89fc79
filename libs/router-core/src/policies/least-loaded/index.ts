// least-loaded: the worker with the least work, counting what it last published (decode
// blocks, queued requests) plus what this router has sent it since that is not yet
// prefilled. Ties go to a random one of the tied workers, so bursts spread out.
import type { PolicyFactory, RoutingPolicy, WorkerView } from '../../types.js';
import { numberParam, rejectUnknownParams } from '../params.js';
import { lowest, pickAtRandom } from '../pick.js';

export interface LeastLoadedParams {
  /** Weight of a waiting request, in blocks (default 8). */
  waitingWeight: number;
}

export const LEAST_LOADED_DEFAULTS: LeastLoadedParams = { waitingWeight: 8 };

/** Validates least-loaded's parameters (`waitingWeight` >= 0, default 8); `policy` names the caller in errors. */
export function compileLeastLoadedParams(raw: Record<string, unknown>, policy = 'least-loaded'): LeastLoadedParams {
  rejectUnknownParams(policy, raw, ['waitingWeight']);
  return { waitingWeight: numberParam(policy, raw, 'waitingWeight', LEAST_LOADED_DEFAULTS.waitingWeight, { min: 0 }) };
}

/** Estimated load of a worker, in KV blocks. */
export function loadScore(w: WorkerView, p: LeastLoadedParams): number {
  const blockSize = Math.max(1, w.card.blockSize);
  const published = w.published;
  const decodeBlocks = Math.max(published?.activeDecodeBlocks ?? 0, w.tracked.decodeBlocks);
  const waiting = published?.waitingRequests ?? 0;
  return decodeBlocks + w.tracked.prefillTokens / blockSize + waiting * p.waitingWeight + w.tracked.requests * 1e-3;
}

export const leastLoaded = {
  id: 'least-loaded',
  create(raw, env): RoutingPolicy {
    const params = compileLeastLoadedParams(raw);
    return {
      id: 'least-loaded',
      choose(candidates) {
        return {
          worker: pickAtRandom(
            lowest(candidates, (w) => loadScore(w, params)),
            env.random,
          ),
        };
      },
    };
  },
} satisfies PolicyFactory;
