// The settings of the router's worker health checks (services/router's HealthChecker runs
// them), checked here so that a graph and a router process reject the same values.
import { ArmatureError } from '@armature/runtime';

export interface HealthCheckOptions {
  /** Time between two checks of a worker, ms (default 2000; 0 turns checking off). */
  intervalMs?: number;
  /** Deadline of one check, ms (default 2000: a busy worker's event loop may lag). */
  timeoutMs?: number;
  /** Consecutive failed checks that inhibit a worker (default 2). */
  failures?: number;
  /** Idle time after which a worker gets a canary request, ms (default 0: no canaries). */
  canaryIdleMs?: number;
}

/** Checks the options as the router starts; throws bad_config naming the field. */
export function checkHealthOptions(o: HealthCheckOptions): Required<HealthCheckOptions> {
  const out = { intervalMs: 2_000, timeoutMs: 2_000, failures: 2, canaryIdleMs: 0, ...o };
  for (const [key, min] of [
    ['intervalMs', 0],
    ['timeoutMs', 1],
    ['failures', 1],
    ['canaryIdleMs', 0],
  ] as const) {
    const v = out[key];
    if (!Number.isSafeInteger(v) || v < min)
      throw new ArmatureError('invalid_argument', 'bad_config', `health.${key} must be an integer >= ${min}, got ${v}`);
  }
  return out;
}
