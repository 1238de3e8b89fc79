// Known series the predictor tests feed in, and a reproducible noise source. Test support
// only; the package index does not export it.
import { mulberry32 } from '@armature/runtime';

/** `length` values from `start`, rising by `slope` each interval. */
export const ramp = (length: number, start: number, slope: number): number[] =>
  Array.from({ length }, (_, i) => start + slope * i);

/** `mean + amplitude · sin(2πi / period)` for i in [0, length). */
export const sinusoid = (length: number, mean: number, amplitude: number, period: number): number[] =>
  Array.from({ length }, (_, i) => mean + amplitude * Math.sin((2 * Math.PI * i) / period));

/** `before` values of `from`, then `after` values of `to`. */
export const step = (before: number, from: number, after: number, to: number): number[] => [
  ...new Array<number>(before).fill(from),
  ...new Array<number>(after).fill(to),
];

/** A seeded uniform [0, 1) source, so noisy series are the same every run. */
export const seededRandom = mulberry32;

/** Feeds `series` in order; returns each prediction made after each observation. */
export function run(predictor: { observe(v: number): void; predict(): number | undefined }, series: readonly number[]) {
  return series.map((value) => {
    predictor.observe(value);
    return predictor.predict();
  });
}

/** Largest |prediction made after value i − actual value i + 1| over i in [from, series.length − 1). */
export function maxOneStepError(predictions: readonly (number | undefined)[], series: readonly number[], from: number) {
  let worst = 0;
  for (let i = from; i < series.length - 1; i++) {
    worst = Math.max(worst, Math.abs((predictions[i] ?? Number.NaN) - series[i + 1]!));
  }
  return worst;
}
