import { describe, expect, it } from 'vitest';
import { parseRamp, rampRate, sendOffsets } from './schedule.js';

describe('a rate ramp', () => {
  it('parses seconds:rate pairs and refuses the rest', () => {
    expect(parseRamp('0:2, 60:20,120:2')).toEqual([
      [0, 2],
      [60, 20],
      [120, 2],
    ]);
    expect(() => parseRamp('0:2,0:5')).toThrow(/times must increase/);
    expect(() => parseRamp('fast')).toThrow(/seconds:rate/);
    expect(() => parseRamp('0:0,10:0')).toThrow(/above 0/);
    expect(rampRate(parseRamp('0:2,60:20'), 30)).toBe(11);
  });

  it('sends as many requests in each window as the ramp says, and stops where it ends at zero', () => {
    const ramp = parseRamp('0:5,30:50,60:5,61:0');
    const offsets = sendOffsets(
      { mode: 'rate', rate: 0, arrival: 'poisson', seed: 3, ramp },
      new Array(5000).fill(undefined),
    )!;
    // Expected counts: the integral of the rate over each 10 s window.
    const window = (from: number, to: number): number =>
      offsets.filter((o) => o >= from * 1000 && o < to * 1000).length;
    const expected = (from: number, to: number): number => {
      let sum = 0;
      for (let t = from; t < to; t += 0.01) sum += rampRate(ramp, t) * 0.01;
      return sum;
    };
    for (const [from, to] of [
      [0, 10],
      [25, 35],
      [50, 60],
    ] as const)
      expect(Math.abs(window(from, to) - expected(from, to))).toBeLessThan(4 * Math.sqrt(expected(from, to)) + 2);
    expect(window(25, 35)).toBeGreaterThan(4 * window(0, 10));
    expect(offsets.length).toBeLessThan(5000);
    expect(Math.max(...offsets)).toBeLessThan(61_100);
    const constant = sendOffsets(
      { mode: 'rate', rate: 0, arrival: 'constant', seed: 1, ramp: parseRamp('0:10,10:10') },
      new Array(50).fill(undefined),
    )!;
    expect(constant[10]! - constant[0]!).toBeCloseTo(1000, -2);
  });
});
