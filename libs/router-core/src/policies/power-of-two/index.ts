// power-of-two: sample two distinct workers, send to the less loaded of the pair. Nearly as
// balanced as least-loaded, but two routers (or a burst before load reports arrive) do not
// all pile onto the one worker that looks emptiest.
import type { PolicyFactory, RoutingPolicy, WorkerView } from '../../types.js';
import { compileLeastLoadedParams, loadScore, type LeastLoadedParams } from '../least-loaded/index.js';
import { lowest, pickAtRandom } from '../pick.js';

/** Two distinct candidates drawn uniformly at random (the one candidate when there is only one). */
export function samplePair(candidates: readonly WorkerView[], random: () => number): WorkerView[] {
  const n = candidates.length;
  if (n < 2) return [...candidates];
  const first = Math.min(n - 1, Math.floor(random() * n));
  let second = Math.min(n - 2, Math.floor(random() * (n - 1)));
  if (second >= first) second++;
  return [candidates[first]!, candidates[second]!];
}

export const powerOfTwo = {
  id: 'power-of-two',
  create(raw, env): RoutingPolicy {
    const params: LeastLoadedParams = compileLeastLoadedParams(raw, 'power-of-two');
    return {
      id: 'power-of-two',
      choose(candidates) {
        const pair = samplePair(candidates, env.random);
        return {
          worker: pickAtRandom(
            lowest(pair, (w) => loadScore(w, params)),
            env.random,
          ),
        };
      },
    };
  },
} satisfies PolicyFactory;
