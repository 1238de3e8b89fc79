import { describe, expect, it } from 'vitest';
import { createKalman } from './kalman.js';
import { maxOneStepError, ramp, run, seededRandom, step } from './test-series.js';

describe('kalman', () => {
  it('predicts the last value until minPoints (default 5)', () => {
    const predictions = run(createKalman(), [10, 50, 20, 80, 30]);
    expect(predictions.slice(0, 4)).toEqual([10, 50, 20, 80]);
    expect(predictions[4]).not.toBe(30);
  });

  it('honours minPoints', () => {
    const series = [3, 9, 4, 7, 8, 2];
    expect(run(createKalman({ minPoints: 7 }), series)).toEqual(series);
    expect(run(createKalman({ minPoints: 1 }), [3, 9])[1]).not.toBe(9);
  });

  it('tracks a linear ramp with small error', () => {
    const series = ramp(60, 100, 10);
    const predictions = run(createKalman(), series);
    expect(maxOneStepError(predictions, series, 20)).toBeLessThan(0.5);
  });

  it('tracks a noisy ramp better than the last value', () => {
    const random = seededRandom(3);
    const truth = ramp(200, 500, 4);
    const series = truth.map((v) => v + 20 * (random() - 0.5));
    const predictions = run(createKalman(), series);
    let kalmanError = 0;
    let naiveError = 0;
    for (let i = 20; i < series.length - 1; i++) {
      kalmanError += Math.abs(predictions[i]! - truth[i + 1]!);
      naiveError += Math.abs(series[i]! - truth[i + 1]!);
    }
    expect(kalmanError).toBeLessThan(naiveError * 0.8);
  });

  it('follows a step change: within 20% after 3 intervals, 5% after 20', () => {
    const predictions = run(createKalman(), step(30, 10, 30, 100));
    expect(Math.abs(predictions[32]! - 100)).toBeLessThan(20);
    expect(Math.abs(predictions[49]! - 100)).toBeLessThan(5);
  });

  it('smooths more with a larger r', () => {
    const series = step(20, 10, 2, 100);
    const jumpy = run(createKalman({ r: 1 }), series)[20]!;
    const smooth = run(createKalman({ r: 1000 }), series)[20]!;
    expect(smooth).toBeLessThan(jumpy);
  });
});
