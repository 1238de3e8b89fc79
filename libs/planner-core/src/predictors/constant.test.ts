import { describe, expect, it } from 'vitest';
import { createConstant } from './constant.js';
import { ramp, run, step } from './test-series.js';

describe('constant', () => {
  it('predicts the last value', () => {
    expect(run(createConstant(), [5, 9, 3, 12])).toEqual([5, 9, 3, 12]);
  });

  it('follows a step change in one interval', () => {
    const predictions = run(createConstant(), step(5, 10, 3, 100));
    expect(predictions.slice(4)).toEqual([10, 100, 100, 100]);
  });

  it('keeps leading zeros: the last value is the forecast', () => {
    const predictor = createConstant();
    expect(run(predictor, [0, 0, 7])).toEqual([0, 0, 7]);
  });

  it('lags a ramp by exactly one slope', () => {
    const series = ramp(10, 100, 5);
    const predictions = run(createConstant(), series);
    for (let i = 0; i < series.length - 1; i++) expect(series[i + 1]! - predictions[i]!).toBe(5);
  });
});
