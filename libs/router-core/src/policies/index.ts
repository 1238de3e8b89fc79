// The policy plugin registry: ids to factories. New policies register here.
import { ArmatureError } from '@armature/runtime';
import type { PolicyEnv, PolicyFactory, RoutingPolicy } from '../types.js';
import { leastLoaded } from './least-loaded/index.js';
import { randomPolicy } from './random/index.js';
import { roundRobin } from './round-robin/index.js';

const FACTORIES: readonly PolicyFactory[] = [roundRobin, leastLoaded, randomPolicy];

/** Ids of every registered policy. */
export const POLICY_IDS = FACTORIES.map((f) => f.id);

/** Builds a policy by id with its parameters; unknown ids and bad parameters throw. */
export function createPolicy(
  id: string,
  params: Record<string, unknown> = {},
  env: PolicyEnv = { random: Math.random },
): RoutingPolicy {
  const factory = FACTORIES.find((f) => f.id === id);
  if (!factory) {
    throw new ArmatureError(
      'invalid_argument',
      'unknown_policy',
      `unknown routing policy ${JSON.stringify(id)}; known: ${POLICY_IDS.join(', ')}`,
    );
  }
  try {
    return factory.create(params, env);
  } catch (err) {
    throw new ArmatureError('invalid_argument', 'bad_policy_params', (err as Error).message);
  }
}
