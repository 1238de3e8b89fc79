// random: a uniformly random worker. A second baseline, immune to ordering effects.
import type { PolicyFactory, RoutingPolicy } from '../../types.js';

export const randomPolicy = {
  id: 'random',
  create(_params, env): RoutingPolicy {
    return {
      id: 'random',
      choose(candidates) {
        return { worker: candidates[Math.floor(env.random() * candidates.length)]!, overlapBlocks: 0 };
      },
    };
  },
} satisfies PolicyFactory;
