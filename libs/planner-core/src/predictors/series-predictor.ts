// The input handling every predictor shares, so that no model sees a bad value: NaN,
// ±Infinity and negative observations are dropped and counted (a failed scrape must not
// poison a forecast), and the zeros a series starts with are skipped (a deployment that
// has not had traffic yet must not drag the first forecasts towards zero; Dynamo does the
// same). Zeros after the first non-zero value are real observations and are kept.
import type { Predictor } from './predictor.js';

export abstract class SeriesPredictor implements Predictor {
  abstract readonly id: string;
  /** The last value the model accepted; undefined until the first one. */
  protected last: number | undefined;
  #ignored = 0;
  #seenValid = false;
  #started: boolean;

  /** `skipLeadingZeros` defaults to true (every predictor but `constant`). */
  constructor(skipLeadingZeros = true) {
    this.#started = !skipLeadingZeros;
  }

  get ignored(): number {
    return this.#ignored;
  }

  observe(value: number): void {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      this.#ignored++;
      return;
    }
    this.#seenValid = true;
    if (!this.#started) {
      if (value === 0) return;
      this.#started = true;
    }
    this.last = value;
    this.accept(value);
  }

  predict(): number | undefined {
    if (this.last === undefined) return this.#seenValid ? 0 : undefined;
    const forecast = this.forecast();
    return Number.isFinite(forecast) ? Math.max(0, forecast) : this.last;
  }

  /** Feeds one valid value (finite, >= 0, past the leading zeros) to the model. */
  protected abstract accept(value: number): void;

  /** The raw one-step forecast; called only after `accept`. Clamped and NaN-guarded by `predict`. */
  protected abstract forecast(): number;
}
