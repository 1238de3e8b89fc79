import { describe, expect, it } from 'vitest';
import { createMovingAverage } from './moving-average.js';
import { run, step } from './test-series.js';

describe('moving-average', () => {
  it('averages what it has before the window fills, then the last 5 by default', () => {
    const predictions = run(createMovingAverage(), [10, 20, 30, 40, 50, 60, 70]);
    expect(predictions).toEqual([10, 15, 20, 25, 30, 40, 50]);
  });

  it('honours window', () => {
    expect(run(createMovingAverage({ window: 2 }), [10, 20, 30, 40])).toEqual([10, 15, 25, 35]);
    expect(run(createMovingAverage({ window: 1 }), [10, 20, 30])).toEqual([10, 20, 30]);
  });

  it('follows a step change within window intervals', () => {
    const predictions = run(createMovingAverage({ window: 4 }), step(10, 10, 10, 100));
    expect(predictions[10]).toBeCloseTo(32.5, 9);
    expect(predictions[12]).toBeCloseTo(77.5, 9);
    expect(predictions[13]).toBe(100);
  });

  it('keeps zeros once traffic has started', () => {
    expect(run(createMovingAverage({ window: 2 }), [0, 0, 8, 0, 0])).toEqual([0, 0, 8, 4, 0]);
  });
});
