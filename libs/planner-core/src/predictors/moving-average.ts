// `moving-average`: the mean of the last `window` values. Smooths interval-to-interval noise
// at the cost of lagging a step change by up to `window` intervals; before `window` values
// it averages what it has.
import { numberParam, rejectUnknownParams } from './params.js';
import { SeriesPredictor } from './series-predictor.js';

export interface MovingAverageParams {
  /** Values averaged (default 5). */
  window: number;
}

export class MovingAveragePredictor extends SeriesPredictor {
  readonly id = 'moving-average';
  readonly #window: number;
  readonly #values: number[] = [];
  #sum = 0;

  constructor(params: MovingAverageParams) {
    super();
    this.#window = params.window;
  }

  protected accept(value: number): void {
    this.#values.push(value);
    if (this.#values.length > this.#window) this.#values.shift();
    // Summing afresh keeps float drift from a running sum out of long-lived predictors.
    this.#sum = this.#values.reduce((a, b) => a + b, 0);
  }

  protected forecast(): number {
    return this.#sum / this.#values.length;
  }
}

/** Builds `moving-average`; `window` defaults to 5. */
export function createMovingAverage(params: Record<string, unknown> = {}): MovingAveragePredictor {
  rejectUnknownParams('moving-average', params, ['window']);
  return new MovingAveragePredictor({ window: numberParam(params, 'window', 5, { integer: true, min: 1 }) });
}
