// `holt-winters`: additive seasonal Holt-Winters, for load with a daily (or any fixed)
// cycle: level, trend and one seasonal offset per phase of a `season`-interval period,
// each smoothed (alpha, beta, gamma). Seasonal offsets need two full seasons to estimate,
// so until then it is Holt's linear (double exponential smoothing: level and trend, the
// trend seeded from the first two values). At two seasons it starts afresh from them: the
// level and trend from the two season means, each offset from the detrended values at its
// phase. Phases count from the first value kept (after leading zeros).
import { numberParam, rejectUnknownParams } from './params.js';
import { SeriesPredictor } from './series-predictor.js';

export interface HoltWintersParams {
  /** Level smoothing, (0, 1] (default 0.5). */
  alpha: number;
  /** Trend smoothing, [0, 1] (default 0.1). */
  beta: number;
  /** Seasonal smoothing, [0, 1] (default 0.3). */
  gamma: number;
  /** Intervals per season, >= 2 (default 12). */
  season: number;
}

export class HoltWintersPredictor extends SeriesPredictor {
  readonly id = 'holt-winters';
  readonly #params: HoltWintersParams;
  #level = 0;
  #trend = 0;
  #count = 0;
  /** The first two seasons, kept until the seasonal model is seeded from them. */
  #warmup: number[] | undefined = [];
  /** Seasonal offsets by phase; undefined while Holt's linear. */
  #seasonal: number[] | undefined;

  constructor(params: HoltWintersParams) {
    super();
    this.#params = params;
  }

  /** True once two full seasons have been seen and the seasonal model runs. */
  get seasonal(): boolean {
    return this.#seasonal !== undefined;
  }

  protected accept(value: number): void {
    const { alpha, beta, gamma, season } = this.#params;
    const index = this.#count++;
    if (this.#seasonal) {
      const phase = index % season;
      const offset = this.#seasonal[phase]!;
      const previous = this.#level;
      this.#level = alpha * (value - offset) + (1 - alpha) * (previous + this.#trend);
      this.#trend = beta * (this.#level - previous) + (1 - beta) * this.#trend;
      this.#seasonal[phase] = gamma * (value - this.#level) + (1 - gamma) * offset;
      return;
    }
    this.#holt(value, index);
    this.#warmup!.push(value);
    if (this.#warmup!.length === 2 * season) this.#seed(this.#warmup!);
  }

  protected forecast(): number {
    const base = this.#level + this.#trend;
    return this.#seasonal ? base + this.#seasonal[this.#count % this.#params.season]! : base;
  }

  #holt(value: number, index: number): void {
    const { alpha, beta } = this.#params;
    if (index === 0) {
      this.#level = value;
    } else if (index === 1) {
      this.#trend = value - this.#level;
      this.#level = value;
    } else {
      const previous = this.#level;
      this.#level = alpha * value + (1 - alpha) * (previous + this.#trend);
      this.#trend = beta * (this.#level - previous) + (1 - beta) * this.#trend;
    }
  }

  #seed(values: readonly number[]): void {
    const m = this.#params.season;
    const mean = (from: number) => values.slice(from, from + m).reduce((a, b) => a + b, 0) / m;
    const first = mean(0);
    const second = mean(m);
    const trend = (second - first) / m;
    // A season mean sits at its middle phase, (m - 1) / 2.
    const offsets = Array.from({ length: m }, (_, phase) => {
      const drift = (phase - (m - 1) / 2) * trend;
      return (values[phase]! - (first + drift) + (values[m + phase]! - (second + drift))) / 2;
    });
    this.#level = second + ((m - 1) / 2) * trend;
    this.#trend = trend;
    this.#seasonal = offsets;
    this.#warmup = undefined;
  }
}

/** Builds `holt-winters`; defaults alpha 0.5, beta 0.1, gamma 0.3, season 12. */
export function createHoltWinters(params: Record<string, unknown> = {}): HoltWintersPredictor {
  rejectUnknownParams('holt-winters', params, ['alpha', 'beta', 'gamma', 'season']);
  return new HoltWintersPredictor({
    alpha: numberParam(params, 'alpha', 0.5, { min: 0, minExclusive: true, max: 1 }),
    beta: numberParam(params, 'beta', 0.1, { min: 0, max: 1 }),
    gamma: numberParam(params, 'gamma', 0.3, { min: 0, max: 1 }),
    season: numberParam(params, 'season', 12, { integer: true, min: 2 }),
  });
}
