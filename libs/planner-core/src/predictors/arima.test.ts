import { describe, expect, it } from 'vitest';
import { createArima, fitArma, forecastArima } from './arima.js';
import { maxOneStepError, ramp, run, seededRandom, sinusoid, step } from './test-series.js';

describe('arima', () => {
  it('predicts the last value until minPoints (default 5)', () => {
    const predictions = run(createArima(), [10, 50, 20, 80, 30, 60]);
    expect(predictions.slice(0, 4)).toEqual([10, 50, 20, 80]);
  });

  it('tracks a linear ramp (default (1,1,1)) with small error', () => {
    const series = ramp(80, 50, 6);
    const predictions = run(createArima(), series);
    expect(maxOneStepError(predictions, series, 5)).toBeLessThan(1e-6);
  });

  it('tracks a quadratic ramp with d = 2', () => {
    const series = Array.from({ length: 40 }, (_, i) => 100 + 3 * i + 0.5 * i * i);
    const predictions = run(createArima({ d: 2, p: 0, q: 0 }), series);
    expect(maxOneStepError(predictions, series, 5)).toBeLessThan(1e-6);
  });

  it('recovers an AR(1) coefficient', () => {
    let total = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const random = seededRandom(seed);
      const series = [0];
      for (let i = 1; i < 400; i++) series.push(0.7 * series[i - 1]! + (random() - 0.5));
      const fit = fitArma(series, 1, 0);
      expect(fit.p).toBe(1);
      total += fit.ar[0]!;
    }
    expect(total / 20).toBeGreaterThan(0.65);
    expect(total / 20).toBeLessThan(0.75);
  });

  it('beats the last value on an autocorrelated series (d = 0)', () => {
    const random = seededRandom(9);
    const series = [500];
    for (let i = 1; i < 300; i++) series.push(500 + 0.2 * (series[i - 1]! - 500) + 100 * (random() - 0.5));
    const predictions = run(createArima({ d: 0, p: 1, q: 0, window: 100 }), series);
    let model = 0;
    let naive = 0;
    for (let i = 100; i < series.length - 1; i++) {
      model += (predictions[i]! - series[i + 1]!) ** 2;
      naive += (series[i]! - series[i + 1]!) ** 2;
    }
    expect(model).toBeLessThan(naive * 0.8);
  });

  it('tracks a sinusoid with AR(2) on the differenced series', () => {
    const series = sinusoid(100, 300, 100, 20);
    const predictions = run(createArima({ p: 2, d: 1, q: 0 }), series);
    expect(maxOneStepError(predictions, series, 40)).toBeLessThan(1);
  });

  it('follows a step change within 3 intervals, to 5%', () => {
    const predictions = run(createArima(), step(30, 10, 20, 100));
    for (let i = 32; i < 50; i++) expect(Math.abs(predictions[i]! - 100)).toBeLessThan(5);
  });

  it('lowers its orders on a short window instead of failing', () => {
    const fit = fitArma([3, 5, 4, 6], 2, 2);
    expect(fit.q).toBe(0);
    expect(fit.p).toBeLessThanOrEqual(1);
    expect(forecastArima([7], 1, 1, 1)).toBe(7);
    const predictions = run(createArima({ minPoints: 1, window: 5 }), [4, 8]);
    expect(predictions).toEqual([4, 12]);
  });

  it('refits on a bounded window', () => {
    // A ramp that turns flat: with window 10 the old slope is forgotten within 10 intervals.
    const series = [...ramp(40, 10, 5), ...new Array<number>(20).fill(205)];
    const predictions = run(createArima({ window: 10 }), series);
    expect(predictions.at(-1)).toBeCloseTo(205, 6);
  });
});
