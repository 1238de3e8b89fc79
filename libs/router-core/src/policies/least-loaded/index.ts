// least-loaded: the worker with the least work, counting what it last published (decode
// blocks, queued requests) plus what this router has sent it since that is not yet
// prefilled. Ties go to a random one of the tied workers, so bursts spread out.
import type { PolicyFactory, RoutingPolicy, WorkerView } from '../../types.js';

export interface LeastLoadedParams {
  /** Weight of a waiting request, in blocks (default 8). */
  waitingWeight: number;
}

function compile(params: Record<string, unknown>): LeastLoadedParams {
  const waitingWeight = params.waitingWeight ?? 8;
  if (typeof waitingWeight !== 'number' || !(waitingWeight >= 0)) {
    throw new Error(`least-loaded: waitingWeight must be a number >= 0, got ${JSON.stringify(waitingWeight)}`);
  }
  return { waitingWeight };
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
    const params = compile(raw);
    return {
      id: 'least-loaded',
      choose(candidates) {
        let best: WorkerView[] = [];
        let bestScore = Infinity;
        for (const w of candidates) {
          const s = loadScore(w, params);
          if (s < bestScore - 1e-9) {
            bestScore = s;
            best = [w];
          } else if (Math.abs(s - bestScore) <= 1e-9) best.push(w);
        }
        return { worker: best[Math.floor(env.random() * best.length)]!, overlapBlocks: 0 };
      },
    };
  },
} satisfies PolicyFactory;
