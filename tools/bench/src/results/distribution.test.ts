import { describe, expect, it } from 'vitest';
import { distribution, percentile, quantilePoints } from './distribution.js';

const oneToTen = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

describe('percentile (numpy linear)', () => {
  it('matches numpy.percentile on 1..10', () => {
    // numpy.percentile(np.arange(1, 11), [0, 50, 90, 95, 99, 100]) = [1, 5.5, 9.1, 9.55, 9.91, 10]
    expect(percentile(oneToTen, 0)).toBe(1);
    expect(percentile(oneToTen, 0.5)).toBe(5.5);
    expect(percentile(oneToTen, 0.9)).toBeCloseTo(9.1, 12);
    expect(percentile(oneToTen, 0.95)).toBeCloseTo(9.55, 12);
    expect(percentile(oneToTen, 0.99)).toBeCloseTo(9.91, 12);
    expect(percentile(oneToTen, 1)).toBe(10);
  });
});

describe('distribution', () => {
  it('summarizes unsorted input', () => {
    const d = distribution([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
    expect(d.count).toBe(10);
    expect(d.mean).toBe(5.5);
    expect(d.p50).toBe(5.5);
    expect(d.p90).toBeCloseTo(9.1, 12);
    expect(d.p95).toBeCloseTo(9.55, 12);
    expect(d.p99).toBeCloseTo(9.91, 12);
    expect(d.min).toBe(1);
    expect(d.max).toBe(10);
  });

  it('is all zeros with count 0 when empty', () => {
    expect(distribution([])).toEqual({ mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0, min: 0, count: 0 });
  });

  it('ignores non-finite values', () => {
    expect(distribution([Number.NaN, 4, Number.POSITIVE_INFINITY, 2])).toMatchObject({
      count: 2,
      mean: 3,
      min: 2,
      max: 4,
    });
  });
});

describe('quantilePoints', () => {
  it('keeps small samples whole and sorted', () => {
    expect(quantilePoints([3, 1, 2])).toEqual([1, 2, 3]);
  });

  it('downsamples to evenly spaced quantiles including min and max', () => {
    const values = Array.from({ length: 10_001 }, (_, i) => 10_000 - i); // 0..10000, reversed
    const points = quantilePoints(values, 2001);
    expect(points).toHaveLength(2001);
    expect(points[0]).toBe(0);
    expect(points[2000]).toBe(10_000);
    expect(points[1000]).toBe(5000);
    expect(points[1]).toBeCloseTo(5, 9);
  });
});
