// The router's settings checked once, the same way for a graph being compiled and for a
// router process reading its environment: policy and parameters through the policy
// factory, busy thresholds, approximate mode and the queue through router-core's own
// checks, and the raw disaggregation settings compiled.
import type { ApproxIndexerOptions } from '@armature/kv';
import {
  checkHealthOptions,
  compileDisaggSettings,
  createPolicy,
  KvRouter,
  RouterQueue,
  type BusyThresholds,
  type DisaggSettings,
  type HealthCheckOptions,
  type RouterQueueOptions,
} from '@armature/router-core';
import { ArmatureError } from '@armature/runtime';
import { settingsFromEnv } from './setting.js';
import { ROUTER_SETTINGS, type RouterSettings } from './tables.js';

/** What a router process runs with: typed, checked, disaggregation compiled. */
export interface RouterEnvSettings {
  policy: string;
  params: Record<string, unknown>;
  busy: BusyThresholds;
  queue: RouterQueueOptions;
  approximate: ApproxIndexerOptions;
  disagg: DisaggSettings;
  readyTimeoutMs: number;
  inhibitMs: number;
  health: HealthCheckOptions;
}

/** Checks router settings as the router will use them; throws router-core's error; returns the compiled disaggregation settings. */
export function checkRouterSettings(settings: RouterSettings): DisaggSettings {
  const policy = createPolicy(settings.policy, settings.params);
  new KvRouter({ policy, busy: settings.busy, approximate: settings.approximate });
  new RouterQueue(settings.queue);
  checkHealthOptions(settings.health);
  if (settings.inhibitMs < 0) throw new Error(`inhibitMs must be >= 0, got ${settings.inhibitMs}`);
  return compileDisaggSettings(settings.disagg);
}

/**
 * Reads a router's settings from its environment (ARMATURE_ROUTER_*, ARMATURE_DISAGG), with
 * the defaults of ROUTER_SETTINGS and the checks the graph applies; throws a bad_config
 * ArmatureError naming what is wrong.
 */
export function routerSettingsFromEnv(env: Record<string, string | undefined> = process.env): RouterEnvSettings {
  const raw = settingsFromEnv(ROUTER_SETTINGS, env);
  let disagg: DisaggSettings;
  try {
    disagg = checkRouterSettings(raw);
  } catch (err) {
    throw new ArmatureError('invalid_argument', 'bad_config', `router settings: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { ...raw, disagg };
}
