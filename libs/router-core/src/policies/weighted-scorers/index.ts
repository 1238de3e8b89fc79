// weighted-scorers: llm-d's endpoint picker. Each scorer rates every candidate in [0, 1]
// (clamped), the policy sums the ratings weighted by configuration and picks the highest,
// so the balance between cache affinity and load changes by configuration, not by code.
import type { PolicyFactory, RouteInput, RoutingPolicy, WorkerView } from '../../types.js';
import { numberParam, objectParam, rejectUnknownParams } from '../params.js';
import { highest, pickAtRandom } from '../pick.js';

/** Rates every candidate for one request; higher is better, nominally in [0, 1]. */
export interface Scorer {
  /** One score per candidate, in candidate order. */
  score(candidates: readonly WorkerView[], input: RouteInput): number[];
}

/** Fraction of the prompt's blocks the worker already caches, in any tier. */
const prefix: Scorer = {
  score(candidates, input) {
    return candidates.map((w) => (input.promptBlocks > 0 ? w.overlap.blocks / input.promptBlocks : 0));
  },
};

/** (maxQ − q) / (maxQ − minQ) over queued plus router-tracked requests; 1 for all when equal. */
const queue: Scorer = {
  score(candidates) {
    const depths = candidates.map((w) => (w.published?.waitingRequests ?? 0) + w.tracked.requests);
    const min = Math.min(...depths);
    const max = Math.max(...depths);
    return depths.map((q) => (max === min ? 1 : (max - q) / (max - min)));
  },
};

/** 1 − the KV-cache usage the worker last published (1 when it has published none). */
const kvUsage: Scorer = {
  score(candidates) {
    return candidates.map((w) => 1 - (w.published?.kvUsage ?? 0));
  },
};

/** Scorer names, as configuration spells them. */
export const SCORER_IDS = ['prefix', 'queue', 'kv-usage'] as const;

export type ScorerId = (typeof SCORER_IDS)[number];

/** Every scorer by its configuration name. */
export const SCORERS: Readonly<Record<ScorerId, Scorer>> = { prefix, queue, 'kv-usage': kvUsage };

export interface WeightedScorersParams {
  /** Weight per scorer (defaults prefix 3, queue 2, kv-usage 2); 0 turns a scorer off. */
  weights: Record<ScorerId, number>;
}

export const WEIGHTED_SCORERS_DEFAULTS: WeightedScorersParams = {
  weights: { prefix: 3, queue: 2, 'kv-usage': 2 },
};

/** Validates weighted-scorers' parameters; scorers left out keep their default weight. */
export function compileWeightedScorersParams(raw: Record<string, unknown>): WeightedScorersParams {
  rejectUnknownParams('weighted-scorers', raw, ['weights']);
  const given = objectParam('weighted-scorers', raw, 'weights', SCORER_IDS);
  const weights = {} as Record<ScorerId, number>;
  for (const id of SCORER_IDS) {
    weights[id] = numberParam(
      'weighted-scorers',
      given,
      id,
      WEIGHTED_SCORERS_DEFAULTS.weights[id],
      { min: 0 },
      'weights.',
    );
  }
  if (SCORER_IDS.every((id) => weights[id] === 0)) {
    throw new Error('weighted-scorers: weights must give at least one scorer a weight > 0');
  }
  return { weights };
}

const clamp01 = (x: number): number => (x > 0 ? Math.min(x, 1) : 0); // NaN -> 0

/** Σ weight · clamp(score, 0, 1) per candidate, in candidate order. */
export function weightedScores(
  candidates: readonly WorkerView[],
  input: RouteInput,
  params: WeightedScorersParams,
): number[] {
  const totals = candidates.map(() => 0);
  for (const id of SCORER_IDS) {
    const weight = params.weights[id];
    if (weight === 0) continue;
    const scores = SCORERS[id].score(candidates, input);
    for (let i = 0; i < totals.length; i++) totals[i] += weight * clamp01(scores[i]);
  }
  return totals;
}

export const weightedScorers = {
  id: 'weighted-scorers',
  create(raw, env): RoutingPolicy {
    const params = compileWeightedScorersParams(raw);
    return {
      id: 'weighted-scorers',
      choose(candidates, input) {
        const totals = weightedScores(candidates, input, params);
        const best = highest(
          candidates.map((_, i) => i),
          (i) => totals[i]!,
        );
        return { worker: candidates[pickAtRandom(best, env.random)]! };
      },
    };
  },
} satisfies PolicyFactory;
