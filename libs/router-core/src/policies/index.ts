// The policy plugin registry: ids to factories. New policies register here.
import { ArmatureError } from '@armature/runtime';
import type { PolicyEnv, PolicyFactory, RoutingPolicy } from '../types.js';
import { cacheAware } from './cache-aware/index.js';
import { kvPolicy } from './kv/index.js';
import { leastLoaded } from './least-loaded/index.js';
import { powerOfTwo } from './power-of-two/index.js';
import { randomPolicy } from './random/index.js';
import { roundRobin } from './round-robin/index.js';
import { weightedScorers } from './weighted-scorers/index.js';

const FACTORIES: readonly PolicyFactory[] = [
  roundRobin,
  randomPolicy,
  leastLoaded,
  powerOfTwo,
  kvPolicy,
  cacheAware,
  weightedScorers,
];

/** Ids of every registered policy. */
export const POLICY_IDS = FACTORIES.map((f) => f.id);

/** Builds a policy by id with its parameters; unknown ids and bad parameters throw. Env defaults to Math.random and Date.now. */
export function createPolicy(
  id: string,
  params: Record<string, unknown> = {},
  env: PolicyEnv = { random: Math.random, now: Date.now },
): RoutingPolicy {
  const factory = FACTORIES.find((f) => f.id === id);
  if (!factory) {
    throw new ArmatureError(
      'invalid_argument',
      'unknown_policy',
      `unknown routing policy ${JSON.stringify(id)}; known: ${POLICY_IDS.join(', ')}`,
    );
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new ArmatureError(
      'invalid_argument',
      'bad_policy_params',
      `${id}: parameters must be an object, got ${JSON.stringify(params)}`,
    );
  }
  try {
    return factory.create(params, env);
  } catch (err) {
    throw new ArmatureError('invalid_argument', 'bad_policy_params', (err as Error).message);
  }
}
