// random: a uniformly random worker. A second baseline, immune to ordering effects.
import type { PolicyFactory, RoutingPolicy } from '../../types.js';
import { rejectUnknownParams } from '../params.js';
import { pickAtRandom } from '../pick.js';

export const randomPolicy = {
  id: 'random',
  create(params, env): RoutingPolicy {
    rejectUnknownParams('random', params, []);
    return {
      id: 'random',
      choose(candidates) {
        return { worker: pickAtRandom(candidates, env.random) };
      },
    };
  },
} satisfies PolicyFactory;
