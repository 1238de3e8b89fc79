import { describe, expect, it } from 'vitest';
import { createHoltWinters } from './holt-winters.js';
import { maxOneStepError, ramp, run, seededRandom, sinusoid, step } from './test-series.js';
import { createMovingAverage } from './moving-average.js';

describe('holt-winters', () => {
  it("is Holt's linear before two seasons", () => {
    const predictor = createHoltWinters({ alpha: 0.5, beta: 0.5, season: 4 });
    // level 10; trend 20 - 10 = 10, level 20; then level = .5·40 + .5·(20 + 10) = 35, trend = .5·15 + .5·10 = 12.5.
    expect(run(predictor, [10, 20, 40])).toEqual([10, 30, 47.5]);
    expect(predictor.seasonal).toBe(false);
    run(predictor, [1, 2, 3, 4]);
    expect(predictor.seasonal).toBe(false);
    run(predictor, [5]);
    expect(predictor.seasonal).toBe(true);
  });

  it('tracks a linear ramp exactly, before and after two seasons', () => {
    const series = ramp(60, 100, 7);
    const predictions = run(createHoltWinters(), series);
    expect(maxOneStepError(predictions, series, 1)).toBeLessThan(1e-9);
  });

  it('tracks a sinusoid of period `season` after two periods', () => {
    const series = sinusoid(96, 300, 100, 12);
    const predictions = run(createHoltWinters({ season: 12 }), series);
    expect(maxOneStepError(predictions, series, 23)).toBeLessThan(1e-6);
    // Before two seasons it is only Holt's linear, and far off.
    expect(maxOneStepError(predictions, series, 2).toFixed()).not.toBe('0');
    const averaged = run(createMovingAverage(), series);
    expect(maxOneStepError(averaged, series, 23)).toBeGreaterThan(50);
  });

  it('tracks a noisy seasonal ramp within the noise', () => {
    const random = seededRandom(11);
    const truth = sinusoid(240, 400, 150, 24).map((v, i) => v + 2 * i);
    const series = truth.map((v) => v + 20 * (random() - 0.5));
    const predictions = run(createHoltWinters({ season: 24, alpha: 0.3, beta: 0.05, gamma: 0.2 }), series);
    let error = 0;
    for (let i = 72; i < series.length - 1; i++) error += Math.abs(predictions[i]! - truth[i + 1]!);
    expect(error / (series.length - 73)).toBeLessThan(12);
  });

  it('follows a step change after it has seeded its seasons', () => {
    const predictions = run(createHoltWinters({ season: 4 }), step(20, 10, 30, 100));
    expect(Math.abs(predictions[24]! - 100)).toBeLessThan(15);
    expect(Math.abs(predictions[49]! - 100)).toBeLessThan(2);
  });
});
