// How long a simulated forward pass takes. The default is Dynamo's mocker polynomial (fitted
// on a real GPU); a table of measured points can replace it (e.g. from tools/profiler).
// Everything is divided by `speedup` so hundreds of mockers can run faster than real time.
import { ArmatureError } from '@armature/runtime';

/** Dynamo's prefill fit, ms = c2 t^2 + c1 t + c0 with t = new tokens in the batch. */
export const DEFAULT_PREFILL_COEFFICIENTS = [4.209989e-7, 1.518344e-2, 16.50142] as const;
/** Dynamo's decode fit, ms = c2 u^2 + c1 u + c0 with u = used / total KV blocks. */
export const DEFAULT_DECODE_COEFFICIENTS = [-25.74, 54.01, 5.74] as const;

type Coefficients = readonly [number, number, number];
type Point = readonly [number, number];

export interface PolynomialPerfModelOptions {
  kind?: 'polynomial';
  /** [c2, c1, c0] of the prefill time in ms over new tokens (default Dynamo's). */
  prefillCoefficients?: Coefficients;
  /** [c2, c1, c0] of the decode step time in ms over KV usage in [0, 1] (default Dynamo's). */
  decodeCoefficients?: Coefficients;
  /** Floor of a decode step, ms (default 1). */
  minDecodeMs?: number;
  /** Divides every time (default 1). */
  speedup?: number;
}

export interface InterpolatedPerfModelOptions {
  kind: 'interpolated';
  /** (new tokens, ms) points, x strictly increasing; linear between, extended linearly past the ends. */
  prefill: readonly Point[];
  /** (KV usage, ms) points, x strictly increasing; same rule. */
  decode: readonly Point[];
  /** Divides every time (default 1). */
  speedup?: number;
}

export type PerfModelOptions = PolynomialPerfModelOptions | InterpolatedPerfModelOptions;

/** The work in one forward pass. */
export interface StepShape {
  /** Prompt tokens computed in this pass (chunks and recomputation included). */
  prefillTokens: number;
  /** Sequences decoding one token in this pass. */
  decodeSequences: number;
  /** Used / total KV blocks during the pass. */
  kvUsage: number;
}

export interface PerfModel {
  readonly speedup: number;
  /** Time to prefill `tokens` new tokens in one pass, ms (0 for none). */
  prefillMs(tokens: number): number;
  /** Time of one decode pass at `kvUsage`, ms. */
  decodeMs(kvUsage: number): number;
  /** Time of a mixed pass: prefill part plus decode part (each only if present), ms. */
  stepMs(step: StepShape): number;
}

function badOption(param: string, message: string): ArmatureError {
  return new ArmatureError('invalid_argument', 'bad_engine_options', `perfModel.${param}: ${message}`, { param });
}

function finite(value: unknown, param: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw badOption(param, `expected a finite number, got ${String(value)}`);
  return value;
}

function coefficients(value: unknown, param: string, fallback: Coefficients): Coefficients {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length !== 3) throw badOption(param, 'expected [c2, c1, c0]');
  return [finite(value[0], param), finite(value[1], param), finite(value[2], param)];
}

function table(value: unknown, param: string): Point[] {
  if (!Array.isArray(value) || value.length === 0)
    throw badOption(param, 'expected a non-empty array of [x, ms] points');
  const points = value.map((point: unknown): Point => {
    if (!Array.isArray(point) || point.length !== 2) throw badOption(param, 'each point must be [x, ms]');
    const ms = finite(point[1], param);
    if (ms < 0) throw badOption(param, `negative time ${ms}`);
    return [finite(point[0], param), ms];
  });
  for (let i = 1; i < points.length; i++) {
    if (points[i]![0] <= points[i - 1]![0]) throw badOption(param, 'x values must be strictly increasing');
  }
  return points;
}

const KNOWN_KEYS: Record<'polynomial' | 'interpolated', readonly string[]> = {
  polynomial: ['kind', 'prefillCoefficients', 'decodeCoefficients', 'minDecodeMs', 'speedup'],
  interpolated: ['kind', 'prefill', 'decode', 'speedup'],
};

/** Linear interpolation through sorted points, extended linearly past the ends, floored at 0. */
export function interpolate(points: readonly Point[], x: number): number {
  if (points.length === 1) return points[0]![1];
  let hi = points.findIndex((p) => p[0] >= x);
  if (hi <= 0) hi = hi === 0 ? 1 : points.length - 1;
  const [x0, y0] = points[hi - 1]!;
  const [x1, y1] = points[hi]!;
  return Math.max(0, y0 + ((y1 - y0) * (x - x0)) / (x1 - x0));
}

/** Compiles perf-model options (default: Dynamo's polynomial, speedup 1); throws on bad values. */
export function createPerfModel(options: PerfModelOptions = {}): PerfModel {
  if (typeof options !== 'object' || options === null) throw badOption('kind', 'expected an object');
  const kind = options.kind ?? 'polynomial';
  if (kind !== 'polynomial' && kind !== 'interpolated') throw badOption('kind', `unknown kind ${String(kind)}`);
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS[kind].includes(key)) throw badOption(key, `unknown option for a ${kind} model`);
  }
  const speedup = options.speedup === undefined ? 1 : finite(options.speedup, 'speedup');
  if (speedup <= 0) throw badOption('speedup', 'must be positive');

  let prefill: (tokens: number) => number;
  let decode: (kvUsage: number) => number;
  if (options.kind === 'interpolated') {
    const prefillPoints = table(options.prefill, 'prefill');
    const decodePoints = table(options.decode, 'decode');
    prefill = (t) => interpolate(prefillPoints, t);
    decode = (u) => interpolate(decodePoints, u);
  } else {
    const [p2, p1, p0] = coefficients(options.prefillCoefficients, 'prefillCoefficients', DEFAULT_PREFILL_COEFFICIENTS);
    const [d2, d1, d0] = coefficients(options.decodeCoefficients, 'decodeCoefficients', DEFAULT_DECODE_COEFFICIENTS);
    const minDecodeMs = options.minDecodeMs === undefined ? 1 : finite(options.minDecodeMs, 'minDecodeMs');
    if (minDecodeMs < 0) throw badOption('minDecodeMs', 'must not be negative');
    prefill = (t) => Math.max(0, p2 * t * t + p1 * t + p0);
    decode = (u) => Math.max(minDecodeMs, d2 * u * u + d1 * u + d0);
  }

  const model: PerfModel = {
    speedup,
    prefillMs: (tokens) => (tokens > 0 ? prefill(tokens) / speedup : 0),
    decodeMs: (kvUsage) => decode(kvUsage) / speedup,
    stepMs: (step) =>
      model.prefillMs(step.prefillTokens) + (step.decodeSequences > 0 ? model.decodeMs(step.kvUsage) : 0),
  };
  return model;
}
