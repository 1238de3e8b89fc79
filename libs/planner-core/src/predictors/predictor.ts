// Load predictors: what the planner expects the next interval to bring, one predictor per
// series (request count, mean ISL, mean OSL). The planner sizes pools for the forecast,
// not for the interval that just ended, so a ramp is met before it arrives. A predictor
// forecasts one value; it does not scale anything, read metrics or keep time.
//
// Module map (predictors/):
//   predictor.ts         this interface, the id registry and createPredictor
//   params.ts            validation of `params` (unknown names refused, each error names its field)
//   series-predictor.ts  shared input handling: bad values ignored and counted, leading zeros skipped
//   constant.ts          `constant`: the last value
//   moving-average.ts    `moving-average`: mean of the last `window` values
//   kalman.ts            `kalman`: local linear trend Kalman filter (Dynamo's defaults)
//   arima.ts             `arima`: ARIMA(p,d,q) refit each interval on a bounded window (own code)
//   holt-winters.ts      `holt-winters`: additive seasonal Holt-Winters, Holt's linear before two seasons
//
// Ids and parameters (all optional; defaults shown):
//   constant        {}
//   moving-average  { window: 5 }
//   kalman          { qLevel: 1.0, qTrend: 0.1, r: 10, minPoints: 5 }
//   arima           { p: 1, d: 1, q: 1, window: 50, minPoints: 5 }
//   holt-winters    { alpha: 0.5, beta: 0.1, gamma: 0.3, season: 12 }
//
// Config example (planner YAML):
//   predictor:
//     id: holt-winters
//     params: { season: 288, alpha: 0.4 }   # 5-minute intervals, daily season
//
// Shared behaviour: NaN, ±Infinity and negative observations are ignored and counted in
// `ignored`; every predictor but `constant` skips the zeros a series starts with (no traffic
// yet must not drag the forecast); `predict()` is undefined until the first valid
// observation, 0 while only leading zeros have been seen, and otherwise finite and >= 0.
import { createArima } from './arima.js';
import { createConstant } from './constant.js';
import { createHoltWinters } from './holt-winters.js';
import { createKalman } from './kalman.js';
import { createMovingAverage } from './moving-average.js';
import { configError } from './params.js';

export interface Predictor {
  /** 'constant' | 'moving-average' | 'arima' | 'kalman' | 'holt-winters'. */
  readonly id: string;
  /** Adds the value observed over the interval that just ended. */
  observe(value: number): void;
  /** The predicted value for the next interval; undefined until it has enough data. Never negative, never NaN. */
  predict(): number | undefined;
  /** Observations refused so far (NaN, ±Infinity, negative, not a number). */
  readonly ignored: number;
}

export interface PredictorSpec {
  id: string;
  params?: Record<string, unknown>;
}

type PredictorFactory = (params: Record<string, unknown>) => Predictor;

const FACTORIES: Readonly<Record<string, PredictorFactory>> = {
  constant: createConstant,
  'moving-average': createMovingAverage,
  kalman: createKalman,
  arima: createArima,
  'holt-winters': createHoltWinters,
};

/** Ids of every registered predictor. */
export const PREDICTOR_IDS: readonly string[] = Object.freeze(Object.keys(FACTORIES));

/** Builds a predictor from its spec; unknown ids, unknown parameters and bad values throw `bad_planner_config`. */
export function createPredictor(spec: PredictorSpec): Predictor {
  if (typeof spec !== 'object' || spec === null) {
    throw configError('predictor', `expected an object with an id, got ${JSON.stringify(spec)}`);
  }
  const factory = typeof spec.id === 'string' && Object.hasOwn(FACTORIES, spec.id) ? FACTORIES[spec.id] : undefined;
  if (!factory) {
    throw configError(
      'predictor.id',
      `unknown predictor ${JSON.stringify(spec.id)}; known: ${PREDICTOR_IDS.join(', ')}`,
    );
  }
  const params = spec.params ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw configError('predictor.params', `expected an object, got ${JSON.stringify(params)}`);
  }
  return factory(params);
}
