// `kalman`: a local linear trend Kalman filter, state [level, trend]. It follows a ramp
// without the lag of an average and smooths noise by how much it trusts each observation
// (`r`) against how fast it lets level and trend move (`qLevel`, `qTrend`). Defaults are
// Dynamo's planner defaults; like Dynamo, the first value sets the level, the trend starts
// at 0 and the covariance at 1000·I. The filter runs from the first value, but until
// `minPoints` values have been seen the forecast is the last value.
import { numberParam, rejectUnknownParams } from './params.js';
import { SeriesPredictor } from './series-predictor.js';

export interface KalmanParams {
  /** Process noise of the level (default 1.0). */
  qLevel: number;
  /** Process noise of the trend (default 0.1). */
  qTrend: number;
  /** Measurement noise (default 10). */
  r: number;
  /** Values before the filter's forecast is used; the last value until then (default 5). */
  minPoints: number;
}

export class KalmanPredictor extends SeriesPredictor {
  readonly id = 'kalman';
  readonly #params: KalmanParams;
  #level = 0;
  #trend = 0;
  // Covariance of [level, trend], symmetric: [[p00, p01], [p01, p11]].
  #p00 = 1000;
  #p01 = 0;
  #p11 = 1000;
  #count = 0;

  constructor(params: KalmanParams) {
    super();
    this.#params = params;
  }

  protected accept(value: number): void {
    this.#count++;
    if (this.#count === 1) {
      this.#level = value;
      return;
    }
    const { qLevel, qTrend, r } = this.#params;
    // Predict: x = F x, P = F P Fᵀ + Q with F = [[1, 1], [0, 1]].
    const level = this.#level + this.#trend;
    const trend = this.#trend;
    const p00 = this.#p00 + 2 * this.#p01 + this.#p11 + qLevel;
    const p01 = this.#p01 + this.#p11;
    const p11 = this.#p11 + qTrend;
    // Update with H = [1, 0].
    const s = p00 + r;
    const k0 = p00 / s;
    const k1 = p01 / s;
    const innovation = value - level;
    this.#level = level + k0 * innovation;
    this.#trend = trend + k1 * innovation;
    this.#p00 = (1 - k0) * p00;
    this.#p01 = (1 - k0) * p01;
    this.#p11 = p11 - k1 * p01;
  }

  protected forecast(): number {
    if (this.#count < this.#params.minPoints) return this.last!;
    return this.#level + this.#trend;
  }
}

/** Builds `kalman`; defaults qLevel 1.0, qTrend 0.1, r 10, minPoints 5 (Dynamo's). */
export function createKalman(params: Record<string, unknown> = {}): KalmanPredictor {
  rejectUnknownParams('kalman', params, ['qLevel', 'qTrend', 'r', 'minPoints']);
  return new KalmanPredictor({
    qLevel: numberParam(params, 'qLevel', 1.0, { min: 0 }),
    qTrend: numberParam(params, 'qTrend', 0.1, { min: 0 }),
    r: numberParam(params, 'r', 10, { min: 0, minExclusive: true }),
    minPoints: numberParam(params, 'minPoints', 5, { integer: true, min: 1 }),
  });
}
