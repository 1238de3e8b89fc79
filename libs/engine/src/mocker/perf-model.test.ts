import { ArmatureError } from '@armature/runtime';
import { describe, expect, it } from 'vitest';
import { createPerfModel, interpolate } from './perf-model.js';

describe('perf model', () => {
  it("defaults to Dynamo's polynomial", () => {
    const model = createPerfModel();
    expect(model.speedup).toBe(1);
    expect(model.prefillMs(0)).toBe(0);
    expect(model.prefillMs(1000)).toBeCloseTo(4.209989e-7 * 1e6 + 1.518344e-2 * 1000 + 16.50142, 9);
    expect(model.prefillMs(1)).toBeCloseTo(16.51660386, 6);
    expect(model.decodeMs(0)).toBeCloseTo(5.74, 9);
    expect(model.decodeMs(0.5)).toBeCloseTo(-25.74 * 0.25 + 54.01 * 0.5 + 5.74, 9);
    expect(model.decodeMs(1)).toBeCloseTo(34.01, 9);
  });

  it('floors decode at 1 ms and divides everything by speedup', () => {
    const floored = createPerfModel({ decodeCoefficients: [0, -100, 0] });
    expect(floored.decodeMs(0.5)).toBe(1);
    const fast = createPerfModel({ speedup: 10 });
    expect(fast.prefillMs(1000)).toBeCloseTo(createPerfModel().prefillMs(1000) / 10, 9);
    expect(fast.decodeMs(0.3)).toBeCloseTo(createPerfModel().decodeMs(0.3) / 10, 9);
    expect(createPerfModel({ decodeCoefficients: [0, -100, 0], speedup: 4 }).decodeMs(1)).toBe(0.25);
  });

  it('prices a mixed pass as its prefill part plus its decode part', () => {
    const model = createPerfModel();
    expect(model.stepMs({ prefillTokens: 0, decodeSequences: 3, kvUsage: 0.2 })).toBeCloseTo(model.decodeMs(0.2), 9);
    expect(model.stepMs({ prefillTokens: 500, decodeSequences: 0, kvUsage: 0.2 })).toBeCloseTo(model.prefillMs(500), 9);
    expect(model.stepMs({ prefillTokens: 500, decodeSequences: 3, kvUsage: 0.2 })).toBeCloseTo(
      model.prefillMs(500) + model.decodeMs(0.2),
      9,
    );
  });

  it('interpolates tables linearly and extends them past the ends', () => {
    const model = createPerfModel({
      kind: 'interpolated',
      prefill: [
        [100, 20],
        [1100, 120],
      ],
      decode: [
        [0, 10],
        [0.5, 20],
        [1, 40],
      ],
      speedup: 2,
    });
    expect(model.prefillMs(600)).toBeCloseTo(70 / 2, 9);
    expect(model.prefillMs(2100)).toBeCloseTo(220 / 2, 9);
    expect(model.prefillMs(0)).toBe(0);
    expect(model.decodeMs(0.25)).toBeCloseTo(15 / 2, 9);
    expect(model.decodeMs(0.75)).toBeCloseTo(30 / 2, 9);
    expect(interpolate([[5, 7]], 1000)).toBe(7);
    expect(
      interpolate(
        [
          [10, 10],
          [20, 0],
        ],
        100,
      ),
    ).toBe(0); // floored at 0
    expect(
      interpolate(
        [
          [10, 10],
          [20, 20],
        ],
        0,
      ),
    ).toBe(0);
    expect(
      interpolate(
        [
          [10, 10],
          [20, 20],
        ],
        5,
      ),
    ).toBe(5);
  });

  it.each([
    [{ speedup: 0 }, /speedup/],
    [{ speedup: Number.NaN }, /speedup/],
    [{ prefillCoefficients: [1, 2] }, /prefillCoefficients/],
    [{ minDecodeMs: -1 }, /minDecodeMs/],
    [{ bogus: 1 }, /bogus/],
    [{ kind: 'cubic' }, /kind/],
    [{ kind: 'interpolated', prefill: [], decode: [[0, 1]] }, /prefill/],
    [
      {
        kind: 'interpolated',
        prefill: [
          [2, 1],
          [1, 2],
        ],
        decode: [[0, 1]],
      },
      /increasing/,
    ],
    [{ kind: 'interpolated', prefill: [[1, -1]], decode: [[0, 1]] }, /negative/],
    [
      { kind: 'interpolated', prefill: [[1, 1]], decode: [[0, 1]], decodeCoefficients: [1, 1, 1] },
      /decodeCoefficients/,
    ],
  ])('rejects %j', (options, message) => {
    const attempt = (): unknown => createPerfModel(options as never);
    expect(attempt).toThrow(ArmatureError);
    expect(attempt).toThrow(message);
  });
});
