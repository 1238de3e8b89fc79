// kv: Dynamo's KV-aware cost. A worker costs the prefill it would still have to do (its
// queued prefill plus the prompt blocks it does not already cache, cached blocks credited by
// the tier holding them) plus the decode blocks it would hold (its active ones plus the
// prompt blocks not already shared with its in-flight requests). Temperature 0 takes the
// cheapest; above 0 it samples a softmax over normalised costs so load spreads.
import type { PolicyEnv, PolicyFactory, RouteInput, RoutingPolicy, WorkerView } from '../../types.js';
import { numberParam, objectParam, rejectUnknownParams } from '../params.js';
import { lowest, pickAtRandom } from '../pick.js';

/** Blocks of prefill saved per cached block, by the tier holding it. */
export interface TierCredits {
  device: number;
  host: number;
  disk: number;
  remote: number;
}

export interface KvParams {
  /** Credit per cached block by tier (defaults device 1.0, host 0.75, disk 0.25, remote 0). */
  tierCredits: TierCredits;
  /** Weight of prefill blocks against decode blocks (default 1.0). */
  prefillLoadScale: number;
  /** 0 picks the cheapest (default); above 0 samples a softmax over normalised costs. */
  temperature: number;
}

export const KV_DEFAULTS: KvParams = {
  tierCredits: { device: 1.0, host: 0.75, disk: 0.25, remote: 0 },
  prefillLoadScale: 1.0,
  temperature: 0,
};

const TIERS = ['device', 'host', 'disk', 'remote'] as const;

/** Validates kv's parameters, filling in KV_DEFAULTS; throws naming the bad parameter. */
export function compileKvParams(raw: Record<string, unknown>): KvParams {
  rejectUnknownParams('kv', raw, ['tierCredits', 'prefillLoadScale', 'temperature']);
  const credits = objectParam('kv', raw, 'tierCredits', TIERS);
  const tierCredits = {} as TierCredits;
  for (const tier of TIERS) {
    tierCredits[tier] = numberParam('kv', credits, tier, KV_DEFAULTS.tierCredits[tier], { min: 0 }, 'tierCredits.');
  }
  return {
    tierCredits,
    prefillLoadScale: numberParam('kv', raw, 'prefillLoadScale', KV_DEFAULTS.prefillLoadScale, { min: 0 }),
    temperature: numberParam('kv', raw, 'temperature', KV_DEFAULTS.temperature, { min: 0 }),
  };
}

/** The terms of a worker's kv cost, in blocks (for tests and for reporting a decision). */
export interface KvCostTerms {
  /** Prompt blocks the cache saves: cached blocks weighted by their tier's credit. */
  credit: number;
  /** Queued prefill (tokens / block size) plus the prompt blocks left after the credit. */
  prefillBlocks: number;
  /** Active decode blocks plus the prompt blocks not already shared with in-flight requests. */
  decodeBlocks: number;
  /** prefillLoadScale × prefillBlocks + decodeBlocks. */
  cost: number;
}

/** The kv cost of sending `input` to `worker`, term by term. */
export function kvCostTerms(worker: WorkerView, input: RouteInput, params: KvParams): KvCostTerms {
  const blockSize = Math.max(1, worker.card.blockSize);
  const { overlap, tracked, published } = worker;
  const c = params.tierCredits;
  const credit = c.device * overlap.device + c.host * overlap.host + c.disk * overlap.disk + c.remote * overlap.remote;
  const queuedPrefillTokens = Math.max(tracked.prefillTokens, published?.activePrefillTokens ?? 0);
  const prefillBlocks = queuedPrefillTokens / blockSize + Math.max(input.promptBlocks - credit, 0);
  const newDecodeBlocks = Math.max(input.promptBlocks - worker.activePrefixBlocks, 0);
  const decodeBlocks = Math.max(tracked.decodeBlocks, published?.activeDecodeBlocks ?? 0) + newDecodeBlocks;
  return { credit, prefillBlocks, decodeBlocks, cost: params.prefillLoadScale * prefillBlocks + decodeBlocks };
}

/** The kv cost of sending `input` to `worker`, in blocks: lower is better. */
export function kvCost(worker: WorkerView, input: RouteInput, params: KvParams): number {
  return kvCostTerms(worker, input, params).cost;
}

/** Sampling weights at temperature T > 0: exp(−(c − min) / ((max − min) · T)); all 1 when costs are equal. */
export function softmaxWeights(costs: readonly number[], temperature: number): number[] {
  const min = Math.min(...costs);
  const range = Math.max(...costs) - min;
  if (range <= 0) return costs.map(() => 1);
  return costs.map((cost) => Math.exp(-(cost - min) / (range * temperature)));
}

function sample<T>(items: readonly T[], weights: readonly number[], random: () => number): T {
  const total = weights.reduce((sum, w) => sum + w, 0);
  let r = random() * total;
  for (let i = 0; i < items.length; i++) {
    r -= weights[i]!;
    if (r < 0) return items[i]!;
  }
  return items[items.length - 1]!;
}

function choose(candidates: readonly WorkerView[], input: RouteInput, params: KvParams, env: PolicyEnv): WorkerView {
  if (params.temperature > 0) {
    const costs = candidates.map((w) => kvCost(w, input, params));
    return sample(candidates, softmaxWeights(costs, params.temperature), env.random);
  }
  const cheapest = lowest(candidates, (w) => kvCost(w, input, params));
  // Among equal costs the smaller tree: its cache has more room to grow before evicting.
  const smallestTree = Math.min(...cheapest.map((w) => w.indexedBlocks));
  return pickAtRandom(
    cheapest.filter((w) => w.indexedBlocks === smallestTree),
    env.random,
  );
}

export const kvPolicy = {
  id: 'kv',
  create(raw, env): RoutingPolicy {
    const params = compileKvParams(raw);
    return {
      id: 'kv',
      choose(candidates, input) {
        return { worker: choose(candidates, input, params, env) };
      },
    };
  },
} satisfies PolicyFactory;
