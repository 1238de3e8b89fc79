// The planner's options, compiled once: a raw mapping (the graph's `services.planner`, or a
// replay's planner.yaml) with documented defaults -> validated, fully populated options.
// Every bad value is a start-up error naming its field (`planner.pools.decode.min`); the
// planner never starts half-configured.
//
//   mode: both              # throughput | load | both (throughput sets the floor, load may go above)
//   intervalMs: 10000       # one decision per interval
//   sloTtftMs: 500
//   sloItlMs: 50
//   predictor: kalman       # or { id: arima, params: { window: 50 } }
//   profile: infra/profiles/mocker.json
//   pools: { prefill: { min: 1, max: 4 }, decode: { min: 1, max: 8, gpus: 1 } }
//   limits: { gpuBudget: 16, maxStep: 2, scaleUpCooldownMs: 0, scaleDownCooldownMs: 30000,
//             scaleDownFraction: 0.8, correction: true, utilization: 0.8, allowProfileMismatch: false }
import { ArmatureError } from '@armature/runtime';
import { createPredictor, type PredictorSpec } from './predictors/index.js';

export type Pool = 'prefill' | 'decode';
export const POOLS: readonly Pool[] = ['prefill', 'decode'];
export type PlannerMode = 'throughput' | 'load' | 'both';
export const PLANNER_MODES: readonly PlannerMode[] = ['throughput', 'load', 'both'];

export interface PoolLimits {
  /** Fewest replicas (default 1). */
  min: number;
  /** Most replicas (default 8). */
  max: number;
  /** GPUs one replica takes, for the budget (default 1). */
  gpus: number;
}

export interface PlannerConfig {
  mode: PlannerMode;
  intervalMs: number;
  sloTtftMs: number;
  sloItlMs: number;
  predictor: PredictorSpec;
  /** Path of the profile file ('' when none: load mode only). */
  profile: string;
  /** Pools the planner scales: decode always; prefill when the deployment has that pool. */
  pools: Partial<Record<Pool, PoolLimits>>;
  /** Total GPUs over every pool (default: the sum of the pools' maxima). */
  gpuBudget: number;
  /** Most replicas one decision adds to a pool (default 2); removals are always one at a time. */
  maxStep: number;
  /** After a pool scaled up, no further scale-up of it for this long, ms (default 0). */
  scaleUpCooldownMs: number;
  /** After any change to a pool, no scale-down of it for this long, ms (default 30 000). */
  scaleDownCooldownMs: number;
  /** Load mode scales down when every estimate, with the load spread over one replica fewer, is under this fraction of the SLO (default 0.8). */
  scaleDownFraction: number;
  /** Throughput mode corrects demand by observed / expected latency (default true). */
  correction: boolean;
  /**
   * The busy fraction throughput mode sizes each worker for (default 0.8): the profile's
   * rates are a worker busy all the time, where queues, and so TTFT, grow without bound.
   */
  utilization: number;
  /** Use a profile of another model or engine (default false: refuse). */
  allowProfileMismatch: boolean;
}

export const PLANNER_DEFAULTS = {
  mode: 'both',
  intervalMs: 10_000,
  sloTtftMs: 500,
  sloItlMs: 50,
  predictor: 'kalman',
  maxStep: 2,
  scaleUpCooldownMs: 0,
  scaleDownCooldownMs: 30_000,
  scaleDownFraction: 0.8,
  utilization: 0.8,
} as const;

type Raw = Record<string, unknown>;

function bad(field: string, message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_planner_config', `planner.${field}: ${message}`, {
    param: field,
  });
}

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

function int(raw: Raw, key: string, where: string, fallback: number, min: number): number {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || (v as number) < min)
    throw bad(`${where}${key}`, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v as number;
}

function positiveInt(raw: Raw, key: string, where: string, fallback: number): number {
  const v = raw[key];
  if (v !== undefined && typeof v === 'number' && v <= 0)
    throw bad(`${where}${key}`, `must be > 0, got ${JSON.stringify(v)}`);
  return int(raw, key, where, fallback, 1);
}

function bool(raw: Raw, key: string, where: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw bad(`${where}${key}`, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function poolLimits(raw: unknown, pool: Pool): PoolLimits {
  const where = `pools.${pool}.`;
  if (!isObject(raw)) throw bad(`pools.${pool}`, `expected a mapping { min, max, gpus }, got ${JSON.stringify(raw)}`);
  for (const key of Object.keys(raw))
    if (!['min', 'max', 'gpus'].includes(key)) throw bad(`${where}${key}`, 'unknown field (known: min, max, gpus)');
  const min = int(raw, 'min', where, 1, 0);
  const max = int(raw, 'max', where, Math.max(8, min), 1);
  if (min > max) throw bad(`${where}min`, `min ${min} is above max ${max}`);
  const gpus = int(raw, 'gpus', where, 1, 1);
  return { min, max, gpus };
}

const KNOWN = ['mode', 'intervalMs', 'sloTtftMs', 'sloItlMs', 'predictor', 'profile', 'pools', 'limits'] as const;
const LIMITS = [
  'gpuBudget',
  'maxStep',
  'scaleUpCooldownMs',
  'scaleDownCooldownMs',
  'scaleDownFraction',
  'correction',
  'utilization',
  'allowProfileMismatch',
] as const;

/**
 * Validates raw planner options and fills in the defaults; `pools` defaults to a decode
 * pool (min 1, max 8). Throws ArmatureError (bad_planner_config) naming the field.
 */
export function compilePlannerConfig(raw: unknown = {}): PlannerConfig {
  if (!isObject(raw)) throw bad('', 'expected a mapping');
  for (const key of Object.keys(raw))
    if (!(KNOWN as readonly string[]).includes(key)) throw bad(key, `unknown field (known: ${KNOWN.join(', ')})`);
  const d = PLANNER_DEFAULTS;
  const mode = raw.mode ?? d.mode;
  if (typeof mode !== 'string' || !(PLANNER_MODES as readonly string[]).includes(mode))
    throw bad('mode', `unknown mode ${JSON.stringify(mode)} (known: ${PLANNER_MODES.join(', ')})`);
  const intervalMs = positiveInt(raw, 'intervalMs', '', d.intervalMs);
  const sloTtftMs = positiveInt(raw, 'sloTtftMs', '', d.sloTtftMs);
  const sloItlMs = positiveInt(raw, 'sloItlMs', '', d.sloItlMs);

  const rawPredictor = raw.predictor ?? d.predictor;
  let predictor: PredictorSpec;
  if (typeof rawPredictor === 'string') predictor = { id: rawPredictor };
  else if (isObject(rawPredictor) && typeof rawPredictor.id === 'string')
    predictor = { id: rawPredictor.id, params: isObject(rawPredictor.params) ? rawPredictor.params : {} };
  else throw bad('predictor', `expected a predictor id or { id, params }, got ${JSON.stringify(rawPredictor)}`);
  try {
    createPredictor(predictor); // an unknown id or a bad parameter fails here, at start-up
  } catch (err) {
    // Its message already names the field (predictor.params.window: ...).
    const e = err as ArmatureError;
    throw new ArmatureError('invalid_argument', 'bad_planner_config', `planner.${e.message}`, { param: e.param });
  }

  const profile = raw.profile ?? '';
  if (typeof profile !== 'string') throw bad('profile', `expected a file path, got ${JSON.stringify(profile)}`);
  if (profile === '' && mode !== 'load')
    throw bad('profile', `mode ${mode} needs a profile (armature profile writes one)`);

  const rawPools = raw.pools ?? { decode: {} };
  if (!isObject(rawPools)) throw bad('pools', 'expected a mapping { prefill?, decode }');
  const pools: Partial<Record<Pool, PoolLimits>> = {};
  for (const key of Object.keys(rawPools)) {
    if (!(POOLS as readonly string[]).includes(key)) throw bad(`pools.${key}`, 'unknown pool (known: prefill, decode)');
    pools[key as Pool] = poolLimits(rawPools[key], key as Pool);
  }
  if (!pools.decode) throw bad('pools.decode', 'is required');

  const limits = raw.limits ?? {};
  if (!isObject(limits)) throw bad('limits', 'expected a mapping');
  for (const key of Object.keys(limits))
    if (!(LIMITS as readonly string[]).includes(key))
      throw bad(`limits.${key}`, `unknown field (known: ${LIMITS.join(', ')})`);
  const footprint = (which: 'min' | 'max'): number =>
    POOLS.reduce((sum, p) => sum + (pools[p] ? pools[p][which] * pools[p].gpus : 0), 0);
  const gpuBudget = int(limits, 'gpuBudget', 'limits.', footprint('max'), 1);
  if (gpuBudget < footprint('min'))
    throw bad(
      'limits.gpuBudget',
      `budget ${gpuBudget} is below the pools' minimum footprint of ${footprint('min')} GPUs`,
    );
  const utilization = limits.utilization ?? d.utilization;
  if (typeof utilization !== 'number' || !(utilization > 0 && utilization <= 1))
    throw bad('limits.utilization', `expected a number in (0, 1], got ${JSON.stringify(utilization)}`);
  const fraction = limits.scaleDownFraction ?? d.scaleDownFraction;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1))
    throw bad('limits.scaleDownFraction', `expected a number in (0, 1), got ${JSON.stringify(fraction)}`);
  return {
    mode: mode as PlannerMode,
    intervalMs,
    sloTtftMs,
    sloItlMs,
    predictor,
    profile,
    pools,
    gpuBudget,
    maxStep: positiveInt(limits, 'maxStep', 'limits.', d.maxStep),
    scaleUpCooldownMs: int(limits, 'scaleUpCooldownMs', 'limits.', d.scaleUpCooldownMs, 0),
    scaleDownCooldownMs: int(limits, 'scaleDownCooldownMs', 'limits.', d.scaleDownCooldownMs, 0),
    scaleDownFraction: fraction,
    correction: bool(limits, 'correction', 'limits.', true),
    utilization,
    allowProfileMismatch: bool(limits, 'allowProfileMismatch', 'limits.', false),
  };
}
