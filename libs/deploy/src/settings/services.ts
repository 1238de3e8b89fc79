// The readers the frontend and the workers take their settings back from the environment
// with: the same tables, defaults and checks the graph compiled them with (the router's
// reader, with its extra checks, is router.ts).
import { randomUUID } from 'node:crypto';
import { settingsFromEnv } from './setting.js';
import {
  FRONTEND_SETTINGS,
  PLANNER_SETTINGS,
  PROCESS_SETTINGS,
  WORKER_SETTINGS,
  type FrontendSettings,
  type PlannerSettings,
  type ProcessSettings,
  type WorkerSettings,
} from './tables.js';

type Env = Record<string, string | undefined>;

/** A process's common settings; an unset instance id becomes `<role>-<8 random hex>`. */
export function processSettingsFromEnv(role: string, env: Env = process.env): ProcessSettings {
  const settings = settingsFromEnv(PROCESS_SETTINGS, env);
  return { ...settings, instanceId: settings.instanceId || `${role}-${randomUUID().slice(0, 8)}` };
}

/** A frontend's settings (ARMATURE_HTTP_PORT, ARMATURE_MAX_BODY_BYTES, ...); a bad value throws bad_config. */
export function frontendSettingsFromEnv(env: Env = process.env): FrontendSettings {
  return settingsFromEnv(FRONTEND_SETTINGS, env);
}

/** A worker's settings (ARMATURE_MODEL, ARMATURE_ENGINE, ARMATURE_TRANSFER_*, ...); a bad value throws bad_config. */
export function workerSettingsFromEnv(env: Env = process.env): WorkerSettings {
  return settingsFromEnv(WORKER_SETTINGS, env);
}

/** A planner's settings (ARMATURE_PLANNER_*); a bad value throws bad_config. */
export function plannerSettingsFromEnv(env: Env = process.env): PlannerSettings {
  return settingsFromEnv(PLANNER_SETTINGS, env);
}
