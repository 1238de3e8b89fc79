// round-robin: each request goes to the next worker in instance-id order. Cache- and
// load-blind; the baseline every other policy is measured against.
import type { PolicyFactory, RoutingPolicy } from '../../types.js';
import { rejectUnknownParams } from '../params.js';

export const roundRobin = {
  id: 'round-robin',
  create(params): RoutingPolicy {
    rejectUnknownParams('round-robin', params, []);
    let next = 0;
    return {
      id: 'round-robin',
      choose(candidates) {
        const sorted = [...candidates].sort((a, b) =>
          a.instanceId === b.instanceId ? a.dpRank - b.dpRank : a.instanceId < b.instanceId ? -1 : 1,
        );
        return { worker: sorted[next++ % sorted.length]! };
      },
    };
  },
} satisfies PolicyFactory;
